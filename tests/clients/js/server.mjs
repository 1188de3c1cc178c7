// Starts the built `myelin` binary on a free loopback port with a fresh data directory, the way
// an admin would (a config file plus MYELIN_* overrides), and stops it afterwards.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export async function startServer(extraEnv = {}) {
    const bin = process.env.TEST_MYELIN_BIN;
    if (!bin) throw new Error("TEST_MYELIN_BIN must point at the built myelin binary");
    const dir = mkdtempSync(join(tmpdir(), "myelin-js-"));
    const config = join(dir, "config.toml");
    writeFileSync(config, 'server_name = "localhost"\n');
    const child = spawn(bin, ["--config", config, "serve"], {
        env: {
            ...process.env,
            MYELIN_LISTEN: "127.0.0.1:0",
            MYELIN_DATA_DIR: join(dir, "data"),
            MYELIN_ALLOW_REGISTRATION: "true",
            MYELIN_RATE_LIMITS__ENABLED: "false",
            MYELIN_LOG__FORMAT: "json",
            ...extraEnv,
        },
        stdio: ["ignore", "ignore", "pipe"],
    });
    const lines = createInterface({ input: child.stderr });
    const addr = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("myelin did not start in 30 s")), 30_000);
        child.on("exit", (code) => reject(new Error(`myelin exited early with ${code}`)));
        lines.on("line", (line) => {
            try {
                const entry = JSON.parse(line);
                if (entry.fields?.message === "listening") {
                    clearTimeout(timer);
                    resolve(entry.fields.addr);
                }
            } catch {
                // not a log line we care about
            }
        });
    });
    return {
        baseUrl: `http://${addr}`,
        async stop() {
            const exited = new Promise((resolve) => child.on("exit", resolve));
            child.kill("SIGTERM");
            await exited;
            rmSync(dir, { recursive: true, force: true });
        },
    };
}
