// agent/examples/flask.yml, the pipeline a user copies, rewritten to deploy one test's Flask site.
import { readFileSync } from "node:fs";
import { EXAMPLE_PIPELINE, REPO } from "./flask-example.ts";

// The paths flask.yml is written with, and what flaskPipelineYaml() puts in their place.
const YML_VENV = "/srv/flask-app/venv";
const YML_LIVE = "/srv/flask-app";
const YML_PIDFILE = "/run/gunicorn/flask-app.pid";
const YML_URL = "http://127.0.0.1:8000";

export interface PipelineOverrides {
  server?: string;
  target?: string;
  name?: string;
  tokenFile?: string;
  stateDir?: string;
  repo?: string;
  branch?: string;
}

/** The site's own paths and URL, and where its agent keeps its state unless told otherwise. */
export interface SitePaths {
  venvPath: string;
  pidfile: string;
  baseUrl: string;
  livePath: string;
  defaultStateDir: string;
}

export function flaskPipelineYaml(site: SitePaths, overrides: PipelineOverrides = {}): string {
  let text = readFileSync(EXAMPLE_PIPELINE, "utf8")
    .replaceAll(YML_VENV, site.venvPath)
    .replaceAll(YML_PIDFILE, site.pidfile)
    .replaceAll(YML_URL, site.baseUrl)
    .replaceAll(YML_LIVE, site.livePath);
  const set = (key: string, value: string | undefined, indent = ""): void => {
    if (value === undefined) return;
    const re = new RegExp(`^${indent}${key}:.*$`, "m");
    if (!re.test(text)) throw new Error(`flask-site: no "${key}:" in ${EXAMPLE_PIPELINE}`);
    text = text.replace(re, `${indent}${key}: ${JSON.stringify(value)}`);
  };
  set("server", overrides.server);
  set("target", overrides.target);
  set("name", overrides.name);
  set("token_file", overrides.tokenFile);
  set("state_dir", overrides.stateDir ?? site.defaultStateDir);
  set("repo", overrides.repo ?? REPO, "    ");
  if (overrides.branch !== undefined) {
    text = text.replace(/^ {4}branches:.*$/m, `    branches: [${JSON.stringify(overrides.branch)}]`);
  }
  return text;
}
