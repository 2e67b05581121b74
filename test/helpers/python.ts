// Runs one of the tests' Python scripts with Debian's /usr/bin/python3 (where
// python3-os-xenapi lives); the script prints what it observed as JSON.
import { execFile } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

export function runPython(script: string, args: string[], timeoutMs = 60_000): Promise<any> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, ...args], { env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`${script} printed no JSON:\n${stdout}\n${stderr}`));
        }
      });
  });
}
