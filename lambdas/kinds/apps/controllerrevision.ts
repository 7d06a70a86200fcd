// ControllerRevision (apps/v1): pkg/registry/apps/controllerrevision. Immutable snapshots of a DaemonSet's
// or StatefulSet's pod template (their revision history, kubectl rollout history/undo). A skeleton: its
// validation is filled in by issue #14's kind work.

import { resourceInfo, type KindStrategy } from '../kind.ts';

export const controllerRevision: KindStrategy = {
  info: resourceInfo('apps', 'v1', 'ControllerRevision', 'controllerrevisions', true),
};
