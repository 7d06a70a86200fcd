// The upgrade of a deployed cluster's table written before objects were counted per namespace (the
// runaway-write guard, ApiServerOptions.maxObjectsPerNamespace): counts every existing object into its
// namespace once, then records that it is done (Registry.countExistingObjects). Objects created since
// the upgrade are counted already; until this runs, a namespace may hold its old objects beyond the limit.
// Safe to run while the cluster serves, and again.
//
//   SKIFF_TABLE=<the stack's TableName output> npx tsx scripts/count-objects.ts

import { backendFromEnv } from '../lambdas/storage/dynamodb.ts';
import { Registry } from '../lambdas/apiserver/registry.ts';

const backend = backendFromEnv();
try {
  const counted = await new Registry(backend).countExistingObjects();
  console.log(`${process.env.SKIFF_TABLE}: ${counted} objects counted into their namespaces`);
} finally {
  await backend.close();
}
