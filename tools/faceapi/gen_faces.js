// face-api's own answers on the sample photographs, for fovea's face pipeline to match:
// for each of data/faces/sample1..6.jpg, the faces found by the tiny detector (input 416,
// score > 0.5) and by SSD MobileNetV1 (confidence > 0.5), each with its box, score, 68
// landmarks and 128-D descriptor, as face-api chains them (TensorFlow.js CPU backend).
//
// Both sides must see identical pixels, and JPEG decoders disagree (jpeg-js and libjpeg
// differ by up to 34 grey levels), so the photos are first decoded by fovea itself
// (crates/fovea-vision/examples/decode.rs) into PNGs in a temporary folder; the fixture
// records their size and pixel sum, which fovea's test checks before comparing.
//
//   cd tools/faceapi && npm install && node gen_faces.js
//
// Writes crates/fovea-vision/tests/fixtures/faceapi_faces.json.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { PNG } = require('pngjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const root = path.join(__dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fovea-faces-'));

function face(r) {
  const b = r.detection.box;
  return {
    box: { x: b.x, y: b.y, width: b.width, height: b.height },
    score: r.detection.score,
    landmarks: r.landmarks.positions.map((p) => [p.x, p.y]),
    descriptor: Array.from(r.descriptor),
  };
}

async function main() {
  await faceapi.tf.setBackend('cpu');
  await faceapi.tf.ready();
  const models = path.join(root, 'models', 'face-api');
  for (const net of ['tinyFaceDetector', 'ssdMobilenetv1', 'faceLandmark68Net', 'faceRecognitionNet']) {
    await faceapi.nets[net].loadFromDisk(models);
  }
  const out = { tfjs: faceapi.tf.version_core, backend: faceapi.tf.getBackend(), images: {} };
  for (let i = 1; i <= 6; i++) {
    const name = `sample${i}`;
    const png = path.join(tmp, `${name}.png`);
    execFileSync('cargo', ['run', '--quiet', '--release', '-p', 'fovea-vision', '--example', 'decode', '--',
      path.join(root, 'data', 'faces', `${name}.jpg`), png], { cwd: root, stdio: 'inherit' });
    const img = PNG.sync.read(fs.readFileSync(png));
    const rgb = new Float32Array(img.width * img.height * 3);
    let sum = 0;
    for (let p = 0; p < img.width * img.height; p++) {
      for (let c = 0; c < 3; c++) {
        rgb[3 * p + c] = img.data[4 * p + c];
        sum += img.data[4 * p + c];
      }
    }
    const t = faceapi.tf.tensor3d(rgb, [img.height, img.width, 3], 'float32');
    const tiny = await faceapi.detectAllFaces(t, new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 }))
      .withFaceLandmarks().withFaceDescriptors();
    const ssd = await faceapi.detectAllFaces(t, new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 }))
      .withFaceLandmarks().withFaceDescriptors();
    t.dispose();
    out.images[name] = { width: img.width, height: img.height, pixel_sum: sum, tiny: tiny.map(face), ssd: ssd.map(face) };
    console.log(name, img.width, img.height, 'tiny', tiny.length, 'ssd', ssd.length);
  }
  fs.rmSync(tmp, { recursive: true });
  const file = path.join(root, 'crates', 'fovea-vision', 'tests', 'fixtures', 'faceapi_faces.json');
  fs.writeFileSync(file, JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
