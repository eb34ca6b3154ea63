/**
 * The camera: opens a stream, grabs JPEG frames through a canvas, names the failure when the
 * camera is denied or missing. Uses the `MediaDevices` and `Document` it is given.
 */

import { CameraError, type CameraHandle, type CameraPort } from '../core/proctor.js';
import { once } from '../core/types.js';

export function cameraPort(
  devices: MediaDevices | undefined,
  doc: Document,
  sleep: (ms: number) => Promise<void>,
): CameraPort {
  return {
    async open(): Promise<CameraHandle> {
      if (!devices?.getUserMedia) throw new CameraError('missing', 'this browser has no camera API (use HTTPS)');
      let stream: MediaStream;
      try {
        stream = await devices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      } catch (e) {
        const name = (e as { name?: string } | null)?.name ?? '';
        if (name === 'NotAllowedError' || name === 'SecurityError') throw new CameraError('denied', name);
        if (name === 'NotFoundError' || name === 'OverconstrainedError') throw new CameraError('missing', name);
        throw new CameraError('failed', name || String(e));
      }
      const video = doc.createElement('video');
      video.muted = true;
      video.playsInline = true;
      video.srcObject = stream;
      await video.play().catch(() => undefined);
      const labels = stream.getVideoTracks().map((t) => t.label);
      const stop = once(() => {
        for (const t of stream.getTracks()) t.stop();
        video.srcObject = null;
      });
      return {
        labels,
        stop,
        async grab(): Promise<Blob> {
          for (let i = 0; i < 40 && video.videoWidth === 0; i += 1) await sleep(50);
          const canvas = doc.createElement('canvas');
          canvas.width = video.videoWidth || 640;
          canvas.height = video.videoHeight || 480;
          const ctx = canvas.getContext('2d');
          if (!ctx) throw new CameraError('failed', 'no 2D canvas');
          ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
          const blob = await new Promise<Blob | null>((r) => canvas.toBlob(r, 'image/jpeg', 0.85));
          if (!blob) throw new CameraError('failed', 'could not encode the frame');
          return blob;
        },
      };
    },
  };
}
