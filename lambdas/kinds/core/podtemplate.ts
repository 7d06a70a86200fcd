// PodTemplate (core/v1): pkg/registry/core/podtemplate. Stored for others to read (controllers and users
// that stamp pods from it); nothing in Skiff acts on it. Its template is defaulted and checked by the
// shared PodSpec rules (machinery/defaulting.ts, machinery/podspec-validation.ts), as a
// ReplicationController's is.

import { defaultPodSpec, ensureObject } from '../../machinery/defaulting.ts';
import { validatePodTemplateSpec } from '../../machinery/podspec-validation.ts';
import { formatLabels } from '../../machinery/selectors.ts';
import { col, layoutContainers, nameCol, str } from '../../machinery/table.ts';
import { isObject } from '../../machinery/types.ts';
import { nameIsDNSSubdomain, obj } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

/** The template is a struct, not a pointer, in Go: it is always there, and its pod spec is defaulted. */
function defaultPodTemplate(pt: Obj): void {
  const template = ensureObject(pt, 'template');
  defaultPodSpec(ensureObject(template, 'spec'));
}

export const podTemplate: KindStrategy = {
  info: resourceInfo('', 'v1', 'PodTemplate', 'podtemplates', true),
  // ValidatePodTemplate: ObjectMeta with ValidatePodName (a DNS subdomain), then the template.
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: true },
  // It has a template, not a spec: its generation starts at 1 as a spec'd kind's does (the registry then
  // counts changes of everything outside metadata, here the template).
  prepareForCreate: (o) => {
    o.metadata.generation = 1;
  },
  defaults: defaultPodTemplate,
  validate: (errs, pt) => validatePodTemplateSpec(errs, obj(pt.template), 'template'),
  // printers.go: no Age column.
  table: {
    columns: () => [
      nameCol(),
      col('Containers', 'string', 'Names of each container in the template.'),
      col('Images', 'string', 'Images referenced by each container in the template.'),
      col('Pod Labels', 'string', 'The labels for the pod template.'),
    ],
    print: (o) => {
      const [names, images] = layoutContainers(o.template?.spec?.containers);
      const labels = isObject(o.template?.metadata?.labels) ? (o.template.metadata.labels as Record<string, string>) : undefined;
      return { cells: [str(o.metadata?.name), names, images, formatLabels(labels)] };
    },
  },
};
