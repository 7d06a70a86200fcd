// DaemonSet (apps/v1): registered so it is served, stored and published in discovery and OpenAPI. A skeleton: the
// kind's defaulting, validation and table columns are filled in by issue #14's kind work.

import { resourceInfo, type KindStrategy } from '../kind.ts';

export const daemonSet: KindStrategy = {
  info: resourceInfo('apps', 'v1', 'DaemonSet', 'daemonsets', true, { shortNames: ['ds'], categories: ['all'], subresources: ['status'] }),
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
  },
};
