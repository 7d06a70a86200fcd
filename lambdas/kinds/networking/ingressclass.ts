// IngressClass (networking.k8s.io/v1): pkg/registry/networking/ingressclass. Names the controller that
// would implement Ingresses of the class; stored only (Skiff runs no ingress controller).

import { ageCol, col, nameCol, since, str } from '../../machinery/table.ts';
import { isObject } from '../../machinery/types.ts';
import { dns1123SubdomainErrors, nameIsDNSLabel, nameIsDNSSubdomain, obj, pathSegmentName, present, regexError, strOf, type ErrorList } from '../../machinery/validation.ts';
import { resourceInfo, type KindStrategy } from '../kind.ts';

type Obj = Record<string, any>;

const MAX_CONTROLLER_LEN = 250;
const SCOPES = ['Cluster', 'Namespace'];
const HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+";
const httpPath = new RegExp(`^${HTTP_PATH_FMT}$`);

/** validation.IsDomainPrefixedPath: "acme.io/foo". */
function validateDomainPrefixedPath(errs: ErrorList, path: string, value: string): void {
  const slash = value.indexOf('/');
  if (slash <= 0 || slash === value.length - 1) return errs.invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")');
  const host = value.slice(0, slash);
  errs.each(path, host, dns1123SubdomainErrors(host));
  const rest = value.slice(slash + 1);
  if (!httpPath.test(rest)) errs.invalid(path, rest, regexError('Invalid path', HTTP_PATH_FMT));
}

function validateParameters(errs: ErrorList, params: Obj, path: string): void {
  if (present(params.apiGroup)) errs.each(`${path}.apiGroup`, strOf(params.apiGroup), dns1123SubdomainErrors(strOf(params.apiGroup)));
  for (const f of ['kind', 'name']) {
    const v = strOf(params[f]);
    if (!v) errs.required(`${path}.${f}`);
    else errs.each(`${path}.${f}`, v, pathSegmentName(v, false));
  }
  if (!present(params.scope)) return errs.required(`${path}.scope`);
  const scope = strOf(params.scope);
  if (!SCOPES.includes(scope)) return errs.notSupported(`${path}.scope`, params.scope, SCOPES);
  if (scope === 'Namespace') {
    if (!present(params.namespace)) errs.required(`${path}.namespace`, "`parameters.scope` is set to 'Namespace'");
    else errs.each(`${path}.namespace`, strOf(params.namespace), nameIsDNSLabel(strOf(params.namespace), false));
  }
  if (scope === 'Cluster' && present(params.namespace)) errs.forbidden(`${path}.namespace`, "`parameters.scope` is set to 'Cluster'");
}

function validateIngressClass(errs: ErrorList, ic: Obj): void {
  const spec = obj(ic.spec);
  const controller = strOf(spec.controller);
  if (!controller) errs.required('spec.controller');
  else {
    if (controller.length > MAX_CONTROLLER_LEN) errs.tooLong('spec.controller', MAX_CONTROLLER_LEN);
    validateDomainPrefixedPath(errs, 'spec.controller', controller);
  }
  if (present(spec.parameters)) validateParameters(errs, obj(spec.parameters), 'spec.parameters');
}

export const ingressClass: KindStrategy = {
  info: resourceInfo('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', false),
  meta: { name: nameIsDNSSubdomain, kubeFinalizers: false },
  // SetDefaults_IngressClass
  defaults: (ic) => {
    if (isObject(ic.spec?.parameters) && !present(ic.spec.parameters.scope)) ic.spec.parameters.scope = 'Cluster';
  },
  validate: validateIngressClass,
  validateUpdate: (errs, ic, old) => {
    const c = strOf(ic.spec?.controller);
    if (c !== strOf(old.spec?.controller)) errs.invalid('spec.controller', c, 'field is immutable');
  },
  table: {
    columns: () => [
      nameCol(),
      col('Controller', 'string', 'Controller that is responsible for handling this class'),
      col('Parameters', 'string', 'A reference to a resource with additional parameters'),
      ageCol(),
    ],
    print: (o, now) => {
      const p = o.spec?.parameters;
      const parameters = isObject(p) ? `${str(p.kind)}${typeof p.apiGroup === 'string' ? `.${p.apiGroup}` : ''}/${str(p.name)}` : '<none>';
      return { cells: [str(o.metadata?.name), str(o.spec?.controller), parameters, since(o.metadata?.creationTimestamp, now)] };
    },
  },
};
