// face-api's own speed on the sample photos, for bench/run.py: detect (tiny, 416) +
// 68 landmarks + descriptors per photo, TensorFlow.js WASM backend, medians of 5 runs
// after a warm-up, on the pixels fovea decodes (PNGs from crates/fovea-vision/examples/decode.rs).
//
//   node tools/faceapi/bench.js --threads 2     (prints JSON: milliseconds per photo)
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { PNG } = require('pngjs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const wasm = require('@tensorflow/tfjs-backend-wasm');

const root = path.join(__dirname, '..', '..');
const args = process.argv.slice(2);
const threads = args.includes('--threads') ? Number(args[args.indexOf('--threads') + 1]) : os.cpus().length;

async function main() {
  wasm.setThreadsCount(threads);
  await faceapi.tf.setBackend('wasm');
  await faceapi.tf.ready();
  const models = path.join(root, 'models', 'face-api');
  for (const net of ['tinyFaceDetector', 'faceLandmark68Net', 'faceRecognitionNet']) {
    await faceapi.nets[net].loadFromDisk(models);
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fovea-bench-'));
  const out = { backend: faceapi.tf.getBackend(), threads, photos: {} };
  for (let i = 1; i <= 6; i++) {
    const png = path.join(tmp, `sample${i}.png`);
    execFileSync(path.join(root, 'target', 'release', 'examples', 'decode'), [path.join(root, 'data', 'faces', `sample${i}.jpg`), png]);
    const img = PNG.sync.read(fs.readFileSync(png));
    const rgb = new Float32Array(img.width * img.height * 3);
    for (let p = 0; p < img.width * img.height; p++) for (let c = 0; c < 3; c++) rgb[3 * p + c] = img.data[4 * p + c];
    const t = faceapi.tf.tensor3d(rgb, [img.height, img.width, 3], 'float32');
    const run = () => faceapi.detectAllFaces(t, new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.5 }))
      .withFaceLandmarks().withFaceDescriptors();
    await run();
    const times = [];
    for (let r = 0; r < 5; r++) {
      const start = process.hrtime.bigint();
      await run();
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    times.sort((a, b) => a - b);
    out.photos[`sample${i}`] = times[2];
    t.dispose();
  }
  fs.rmSync(tmp, { recursive: true });
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
