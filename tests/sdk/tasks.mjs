// What the task service's tests share: waiting for a task to end, or for anything to appear.
import assert from 'node:assert/strict';

/** What `find` answers once it answers something (within a minute). */
export async function until(what, find) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = await find();
    if (found) return found;
    assert.ok(Date.now() < deadline, `${what} did not appear`);
    await new Promise((resolve) => { setTimeout(resolve, 50); });
  }
}

/** The task once it has left `new` and `inProgress`. */
export async function finished(exh, id) {
  return until(`the end of task ${id}`, async () => {
    const task = await exh.tasks.findById(id);
    return task && !['new', 'inProgress'].includes(task.status) ? task : undefined;
  });
}
