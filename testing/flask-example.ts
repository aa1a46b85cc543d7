// The example Flask app (examples/flask-app) as the tests deploy it: its files, its committed
// migration, and the releases a test pushes on top of it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const EXAMPLE_APP = join(ROOT, "examples", "flask-app");
export const EXAMPLE_PIPELINE = join(ROOT, "agent", "examples", "flask.yml");
export const BRANCH = "main";
export const REPO = "owner/flask-app";

/** The alembic revision of the example's committed initial migration. */
export const INITIAL_REVISION: string = readInitialRevision();

function readInitialRevision(): string {
  const dir = join(EXAMPLE_APP, "migrations", "versions");
  for (const file of readdirSync(dir)) {
    if (!file.endsWith(".py")) continue;
    const src = readFileSync(join(dir, file), "utf8");
    if (/^down_revision = None$/m.test(src)) {
      const m = /^revision = '([^']+)'$/m.exec(src);
      if (m?.[1]) return m[1];
    }
  }
  throw new Error(`flask-site: no initial migration in ${dir}`);
}

/** The example's files (release 1), without what a local run of it leaves behind. */
export function exampleFiles(): Record<string, string> {
  const skip = new Set(["venv", "instance", "__pycache__", ".git"]);
  const files: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(EXAMPLE_APP, rel))) {
      if (skip.has(name) || name.endsWith(".pyc") || name.endsWith(".db")) continue;
      const path = rel ? `${rel}/${name}` : name;
      if (statSync(join(EXAMPLE_APP, path)).isDirectory()) walk(path);
      else files[path] = readFileSync(join(EXAMPLE_APP, path), "utf8");
    }
  };
  walk("");
  return files;
}

export type Migration = "none" | "add column" | "raise";

/** The column a release's "add column" migration adds to the `note` table. */
export function columnAddedIn(release: number): string {
  return `added_in_v${release}`;
}

/** The alembic revision id versionFiles() gives release n's migration. */
export function releaseRevision(release: number): string {
  return release <= 1 ? INITIAL_REVISION : `release_${release}`;
}

/**
 * The files that turn the example into release n: VERSION becomes "n.0.0" and, on request, a
 * migration that adds column `added_in_v<n>` to `note` or one that raises. The migration follows
 * release n-1's (pass `parent` when n-1 had none). Give the result to commit().
 */
export function versionFiles(release: number, opts: { migration?: Migration; parent?: string } = {}): Record<string, string> {
  if (!Number.isInteger(release) || release < 2) throw new TypeError(`flask-site: release must be an integer ≥ 2, got ${release}`);
  const files: Record<string, string> = { VERSION: `${release}.0.0\n` };
  const migration = opts.migration ?? "none";
  if (migration === "none") return files;
  const parent = opts.parent ?? releaseRevision(release - 1);
  const body =
    migration === "add column"
      ? [
          `    with op.batch_alter_table('note') as batch_op:`,
          `        batch_op.add_column(sa.Column('${columnAddedIn(release)}', sa.String(length=100), nullable=True))`,
        ]
      : [`    raise RuntimeError("release ${release}'s migration fails on purpose")`];
  const down =
    migration === "add column"
      ? [`    with op.batch_alter_table('note') as batch_op:`, `        batch_op.drop_column('${columnAddedIn(release)}')`]
      : [`    pass`];
  files[`migrations/versions/${releaseRevision(release)}.py`] = [
    `"""release ${release}: ${migration}`,
    ``,
    `Revision ID: ${releaseRevision(release)}`,
    `Revises: ${parent}`,
    `"""`,
    `from alembic import op`,
    `import sqlalchemy as sa`,
    ``,
    `revision = '${releaseRevision(release)}'`,
    `down_revision = '${parent}'`,
    `branch_labels = None`,
    `depends_on = None`,
    ``,
    ``,
    `def upgrade():`,
    ...body,
    ``,
    ``,
    `def downgrade():`,
    ...down,
    ``,
  ].join("\n");
  return files;
}
