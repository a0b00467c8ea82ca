// How TensorFlow.js itself decodes the four face-api weight files (tf.io.decodeWeights):
// for every tensor its shape, dtype, the f64 sum of its values and every 997th value, so
// that fovea's manifest loader can be checked against TF.js without copying 50 MB of
// expanded weights.
//
//   cd tools/faceapi && npm install && node gen_weights.js
//
// Writes crates/fovea-vision/tests/fixtures/faceapi_weights.json.
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');

const root = path.join(__dirname, '..', '..');
const models = ['tiny_face_detector', 'ssd_mobilenetv1', 'face_landmark_68', 'face_recognition'];
const STEP = 997;

async function main() {
  await tf.setBackend('cpu');
  const out = { tfjs: tf.version_core, step: STEP, models: {} };
  for (const m of models) {
    const dir = path.join(root, 'models', 'face-api');
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, `${m}_model-weights_manifest.json`)));
    const tensors = {};
    for (const group of manifest) {
      const bytes = Buffer.concat(group.paths.map((p) => fs.readFileSync(path.join(dir, p))));
      const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      const decoded = tf.io.decodeWeights(buffer, group.weights);
      for (const [name, t] of Object.entries(decoded)) {
        const values = Array.from(t.dataSync());
        tensors[name] = {
          shape: t.shape,
          dtype: t.dtype,
          sum: values.reduce((a, b) => a + b, 0),
          sampled: values.filter((_, i) => i % STEP === 0),
        };
      }
    }
    out.models[m] = tensors;
    console.log(m, Object.keys(tensors).length, 'tensors');
  }
  const file = path.join(root, 'crates', 'fovea-vision', 'tests', 'fixtures', 'faceapi_weights.json');
  fs.writeFileSync(file, JSON.stringify(out));
}

main();
