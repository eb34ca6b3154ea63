// Makes the demo lesson video (a real WebM/VP8 file, no external URLs) with ffmpeg:
// `node scripts/make-video.mjs [--seconds 72] [--out dist/demo/lesson.webm]`.
// 72 s is the 12-minute demo lesson at `proctor serve --time-scale 10`; the SDK maps video
// time to lesson time by the server's time scale, so the video should last lesson / scale.
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const seconds = Number(arg('seconds', '72'));
const out = arg('out', join(root, 'dist/demo/lesson.webm'));
mkdirSync(dirname(out), { recursive: true });
const r = spawnSync(
  'ffmpeg',
  [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=480x270:rate=15:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`,
    '-c:v', 'libvpx', '-b:v', '250k', '-deadline', 'realtime', '-cpu-used', '8', '-g', '15',
    '-c:a', 'libvorbis', '-shortest', out,
  ],
  { stdio: 'inherit' },
);
if (r.error || r.status !== 0) {
  console.error('ffmpeg failed or is missing: install it (apt-get install -y ffmpeg) and run this again.');
  process.exit(1);
}
console.log(`${out}: ${seconds} s, ${statSync(out).size} bytes`);
