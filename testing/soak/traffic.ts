/**
 * The soak's steady stream of pushes: a new commit each (its own delivery GUID), some failing on purpose
 * on one host (its FAIL file names it), a newer one often arriving while the previous deployment still
 * runs (superseding its queued jobs); unanswered deliveries re-sent with the same GUID, as GitHub's
 * Redeliver does, and now and then an answered one redelivered. Nothing is sent while `world.quiet`.
 */
import { pushPayload } from "../../dev/github.ts";
import { sleep } from "../../agent/common/sleep.ts";
import { REPO, type SoakWorld } from "./world.ts";

export function startTraffic(world: SoakWorld, random: () => number): { pushes: () => number; stop: () => Promise<void> } {
  let stopped = false;
  let pushes = 0;
  const loop = (async () => {
    while (!stopped) {
      if (world.quiet) {
        world.trafficStill = true;
        await sleep(100); // nothing drawn meanwhile: a seed's pushes stay the same
        continue;
      }
      world.trafficStill = false;
      pushes++;
      const failOn = random() < 0.15 ? world.hosts[Math.floor(random() * world.hosts.length)]!.name : "";
      const sha = world.repo.commit({ VERSION: `${pushes}\n`, FAIL: `${failOn}\n` }, `push ${pushes}`);
      await world.sender.send(sha, pushPayload({ repo: REPO, ref: "refs/heads/main", after: sha }));
      for (const d of world.sender.unanswered().slice(0, 3)) await world.sender.resend(d);
      const answered = world.sender.deliveries.filter((d) => d.first);
      if (answered.length > 0 && random() < 0.15) await world.sender.resend(answered[Math.floor(random() * answered.length)]!);
      await sleep(300 + random() * 1700);
    }
  })();
  return {
    pushes: () => pushes,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
