// metav1.Status: the one place where API errors are built. Every failure the apiserver returns is an
// ApiError carrying a Status body with Kubernetes' reason and code, so kubectl and client libraries
// print the same messages they would against a real cluster.

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'Timeout'
  | 'TooManyRequests'
  | 'InternalError'
  | 'Expired'
  | 'ServiceUnavailable';

export interface StatusCause {
  reason?: string; // e.g. FieldValueInvalid, FieldValueRequired
  message?: string;
  field?: string; // e.g. metadata.name, spec.containers[0].image
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string; // the resource plural, as Kubernetes puts it (e.g. "pods")
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, unknown>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

const codes: Record<StatusReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  AlreadyExists: 409,
  Conflict: 409,
  Gone: 410,
  Expired: 410,
  RequestEntityTooLarge: 413,
  UnsupportedMediaType: 415,
  Invalid: 422,
  TooManyRequests: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
  Timeout: 504,
};

export class ApiError extends Error {
  readonly status: Status;
  constructor(reason: StatusReason, message: string, details?: StatusDetails, code?: number) {
    super(message);
    this.name = 'ApiError';
    this.status = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      ...(details ? { details } : {}),
      code: code ?? codes[reason],
    };
  }
  get code(): number {
    return this.status.code;
  }
  get reason(): StatusReason {
    return this.status.reason!;
  }
}

/** Group/resource as Kubernetes prints it in messages: `pods` or `leases.coordination.k8s.io`. */
export function qualifiedResource(resource: string, group = ''): string {
  return group ? `${resource}.${group}` : resource;
}

export function successStatus(details?: StatusDetails): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', ...(details ? { details } : {}), code: 200 };
}

/** A failure a handler returns as its result rather than raises: message and code, no reason (pods/eviction's 500). */
export function failureStatus(message: string, code: number): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, code };
}

// The constructors below produce Kubernetes' exact message texts (k8s.io/apimachinery/pkg/api/errors).

export const errors = {
  notFound(resource: string, group: string, name: string): ApiError {
    return new ApiError('NotFound', `${qualifiedResource(resource, group)} "${name}" not found`, {
      name,
      ...(group ? { group } : {}),
      kind: resource,
    });
  },
  alreadyExists(resource: string, group: string, name: string): ApiError {
    return new ApiError('AlreadyExists', `${qualifiedResource(resource, group)} "${name}" already exists`, {
      name,
      ...(group ? { group } : {}),
      kind: resource,
    });
  },
  conflict(resource: string, group: string, name: string, why: string): ApiError {
    return new ApiError(
      'Conflict',
      `Operation cannot be fulfilled on ${qualifiedResource(resource, group)} "${name}": ${why}`,
      { name, ...(group ? { group } : {}), kind: resource },
    );
  },
  /** The optimistic-concurrency failure: the client's resourceVersion is not the stored one. */
  staleResourceVersion(resource: string, group: string, name: string): ApiError {
    return errors.conflict(
      resource,
      group,
      name,
      'the object has been modified; please apply your changes to the latest version and try again',
    );
  },
  /** Validation failure. `kind` is the Kind (e.g. "Pod"), causes carry the field paths. */
  invalid(kind: string, group: string, name: string, causes: StatusCause[]): ApiError {
    const list = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : `${c.message}`));
    const joined = list.length === 1 ? list[0] : `[${list.join(', ')}]`;
    const qualifiedKind = group ? `${kind}.${group}` : kind;
    return new ApiError('Invalid', `${qualifiedKind} "${name}" is invalid: ${joined}`, {
      name,
      ...(group ? { group } : {}),
      kind,
      causes,
    });
  },
  badRequest(message: string): ApiError {
    return new ApiError('BadRequest', message);
  },
  unauthorized(message = 'Unauthorized'): ApiError {
    return new ApiError('Unauthorized', message);
  },
  forbidden(message: string): ApiError {
    return new ApiError('Forbidden', message);
  },
  methodNotAllowed(message = 'the server does not allow this method on the requested resource'): ApiError {
    return new ApiError('MethodNotAllowed', message);
  },
  notAcceptable(message: string): ApiError {
    return new ApiError('NotAcceptable', message);
  },
  unsupportedMediaType(contentType: string): ApiError {
    return new ApiError('UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${JSON.stringify(contentType)})`);
  },
  tooLarge(limit: number): ApiError {
    return new ApiError('RequestEntityTooLarge', `Request entity too large: limit is ${limit}`);
  },
  /** A watch or continue from a resourceVersion older than what the store still keeps. */
  gone(message: string): ApiError {
    return new ApiError('Expired', message, undefined, 410);
  },
  /** 404 for a path that names no known resource (Kubernetes answers with reason NotFound and this text). */
  pageNotFound(): ApiError {
    return new ApiError('NotFound', 'the server could not find the requested resource', {});
  },
  internal(message: string): ApiError {
    return new ApiError('InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });
  },
};
