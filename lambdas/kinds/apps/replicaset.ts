// ReplicaSet (apps/v1): registered so it is served, stored and published in discovery and OpenAPI. A skeleton: the
// kind's defaulting, validation and table columns are filled in by issue #14's kind work.

import { resourceInfo, type KindStrategy } from '../kind.ts';
import { labelSelectorScale } from './scale.ts';

export const replicaSet: KindStrategy = {
  info: resourceInfo('apps', 'v1', 'ReplicaSet', 'replicasets', true, { shortNames: ['rs'], categories: ['all'], subresources: ['status', 'scale'] }),
  scale: labelSelectorScale,
  prepareForCreate: (o) => {
    delete o.status;
  },
  prepareForUpdate: (o, old, subresource) => {
    if (!subresource) o.status = old.status;
  },
};
