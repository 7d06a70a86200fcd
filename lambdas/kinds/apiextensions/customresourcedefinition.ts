// CustomResourceDefinition (apiextensions.k8s.io/v1): read-only and always empty, as Skiff has no custom
// resources yet. kubectl lists CRDs to tell an unknown kind from a custom one ("no matches for kind ...
// ensure CRDs are installed first"); creating one is 405.

import { resourceInfo, type KindStrategy } from '../kind.ts';

export const customResourceDefinition: KindStrategy = {
  info: resourceInfo('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, {
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    verbs: ['get', 'list', 'watch'],
  }),
};
