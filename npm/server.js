// The entry OpenCode 2 loads (a package's `./server` export, a directory's `server.js`):
// the plugin as the plain `{ id, server, setup }` object its loader decodes. The same
// plugin, and the same single engine per process, as index.js (see there).
import OpenCodeSyncPlugin from "./index.js";

export default { id: OpenCodeSyncPlugin.id, server: OpenCodeSyncPlugin.server, setup: OpenCodeSyncPlugin.setup };
