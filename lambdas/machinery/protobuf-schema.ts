// The Kubernetes protobuf messages Skiff decodes, as a compact table of our own: message → field →
// [field number, type, flags]. Field numbers are the wire protocol (k8s.io/api and apimachinery);
// the flags carry what Go's JSON encoding would do with the field, so protobuf.ts can produce the
// object a client would have sent as JSON.
//
// type: 's' string, 'b' bool, 'i' int32, 'l' int64, 'y' bytes, or a message name;
//       prefix '[' = repeated, '{' = map<string, …>.
// flags: 'p' Go pointer (or *T): present on the wire = set, so zero values and empty messages are kept;
//        'r' no omitempty: zero scalars are kept ("", 0, false);
//        'i' embedded struct (json:",inline"): its fields go into the parent object.
// Without a flag a field is omitempty: zero scalars, empty lists/maps and empty messages are dropped.
// Special messages (converted by protobuf.ts): Time, Quantity, IntOrString, FieldsV1.

export type FieldSpec = readonly [num: number, type: string, flags?: string];
export type MessageSpec = Readonly<Record<string, FieldSpec>>;

const S = 's';

// Shapes shared by several messages.
const localRefInline: MessageSpec = { localObjectReference: [1, 'LocalObjectReference', 'i'] };
const keySelector: MessageSpec = { ...localRefInline, key: [2, S, 'r'], optional: [3, 'b', 'p'] };
const envSource: MessageSpec = { ...localRefInline, optional: [2, 'b', 'p'] };
const projection: MessageSpec = { ...localRefInline, items: [2, '[KeyToPath'], optional: [4, 'b', 'p'] };
const resources: MessageSpec = { limits: [1, '{Quantity'], requests: [2, '{Quantity'] };
const podAffinity: MessageSpec = {
  requiredDuringSchedulingIgnoredDuringExecution: [1, '[PodAffinityTerm'],
  preferredDuringSchedulingIgnoredDuringExecution: [2, '[WeightedPodAffinityTerm'],
};
const container: MessageSpec = {
  name: [1, S, 'r'], image: [2, S], command: [3, '[s'], args: [4, '[s'], workingDir: [5, S],
  ports: [6, '[ContainerPort'], envFrom: [19, '[EnvFromSource'], env: [7, '[EnvVar'],
  resources: [8, 'ResourceRequirements'], resizePolicy: [23, '[ContainerResizePolicy'],
  restartPolicy: [24, S, 'p'], restartPolicyRules: [25, '[ContainerRestartRule'],
  volumeMounts: [9, '[VolumeMount'], volumeDevices: [21, '[VolumeDevice'],
  livenessProbe: [10, 'Probe', 'p'], readinessProbe: [11, 'Probe', 'p'], startupProbe: [22, 'Probe', 'p'],
  lifecycle: [12, 'Lifecycle', 'p'], terminationMessagePath: [13, S], terminationMessagePolicy: [20, S],
  imagePullPolicy: [14, S], securityContext: [15, 'SecurityContext', 'p'],
  stdin: [16, 'b'], stdinOnce: [17, 'b'], tty: [18, 'b'],
};
const handler: MessageSpec = {
  exec: [1, 'ExecAction', 'p'], httpGet: [2, 'HTTPGetAction', 'p'], tcpSocket: [3, 'TCPSocketAction', 'p'],
};
const typedRef: MessageSpec = { apiGroup: [1, S, 'p'], kind: [2, S, 'r'], name: [3, S, 'r'] };
const profile: MessageSpec = { type: [1, S, 'r'], localhostProfile: [2, S, 'p'] };
const ip: MessageSpec = { ip: [1, S, 'r'] };
const nameOnly: MessageSpec = { name: [1, S, 'r'] };

export const messages: Readonly<Record<string, MessageSpec>> = {
  // --- runtime, intstr, resource ---
  Unknown: { typeMeta: [1, 'TypeMeta'], raw: [2, 'y'], contentEncoding: [3, S], contentType: [4, S] },
  TypeMeta: { apiVersion: [1, S], kind: [2, S] },
  IntOrString: { type: [1, 'l'], intVal: [2, 'i'], strVal: [3, S] },
  Quantity: { string: [1, S] },

  // --- meta/v1 ---
  Time: { seconds: [1, 'l'], nanos: [2, 'i'] },
  FieldsV1: { Raw: [1, 'y'] },
  ObjectMeta: {
    name: [1, S], generateName: [2, S], namespace: [3, S], selfLink: [4, S], uid: [5, S],
    resourceVersion: [6, S], generation: [7, 'l'], creationTimestamp: [8, 'Time'],
    deletionTimestamp: [9, 'Time', 'p'], deletionGracePeriodSeconds: [10, 'l', 'p'],
    labels: [11, '{s'], annotations: [12, '{s'], ownerReferences: [13, '[OwnerReference'],
    finalizers: [14, '[s'], managedFields: [17, '[ManagedFieldsEntry'],
  },
  OwnerReference: {
    apiVersion: [5, S, 'r'], kind: [1, S, 'r'], name: [3, S, 'r'], uid: [4, S, 'r'],
    controller: [6, 'b', 'p'], blockOwnerDeletion: [7, 'b', 'p'],
  },
  ManagedFieldsEntry: {
    manager: [1, S], operation: [2, S], apiVersion: [3, S], time: [4, 'Time', 'p'], fieldsType: [6, S],
    fieldsV1: [7, 'FieldsV1', 'p'], subresource: [8, S],
  },
  LabelSelector: { matchLabels: [1, '{s'], matchExpressions: [2, '[LabelSelectorRequirement'] },
  LabelSelectorRequirement: { key: [1, S, 'r'], operator: [2, S, 'r'], values: [3, '[s'] },
  Condition: {
    type: [1, S, 'r'], status: [2, S, 'r'], observedGeneration: [3, 'l'], lastTransitionTime: [4, 'Time'],
    reason: [5, S, 'r'], message: [6, S, 'r'],
  },
  DeleteOptions: {
    gracePeriodSeconds: [1, 'l', 'p'], preconditions: [2, 'Preconditions', 'p'], orphanDependents: [3, 'b', 'p'],
    propagationPolicy: [4, S, 'p'], dryRun: [5, '[s'], ignoreStoreReadErrorWithClusterBreakingPotential: [6, 'b', 'p'],
  },
  Preconditions: { uid: [1, S, 'p'], resourceVersion: [2, S, 'p'] },

  // --- core/v1: Namespace, ConfigMap, Secret, ServiceAccount, Binding ---
  Namespace: { metadata: [1, 'ObjectMeta'], spec: [2, 'NamespaceSpec'], status: [3, 'NamespaceStatus'] },
  NamespaceSpec: { finalizers: [1, '[s'] },
  NamespaceStatus: { phase: [1, S], conditions: [2, '[NamespaceCondition'] },
  NamespaceCondition: {
    type: [1, S, 'r'], status: [2, S, 'r'], lastTransitionTime: [4, 'Time'], reason: [5, S], message: [6, S],
  },
  ConfigMap: { metadata: [1, 'ObjectMeta'], immutable: [4, 'b', 'p'], data: [2, '{s'], binaryData: [3, '{y'] },
  // ResourceQuota (kubectl create quota)
  ResourceQuota: { metadata: [1, 'ObjectMeta'], spec: [2, 'ResourceQuotaSpec'], status: [3, 'ResourceQuotaStatus'] },
  ResourceQuotaSpec: { hard: [1, '{Quantity'], scopes: [2, '[s'], scopeSelector: [3, 'ScopeSelector', 'p'] },
  ResourceQuotaStatus: { hard: [1, '{Quantity'], used: [2, '{Quantity'] },
  ScopeSelector: { matchExpressions: [1, '[ScopedResourceSelectorRequirement'] },
  ScopedResourceSelectorRequirement: { scopeName: [1, S], operator: [2, S], values: [3, '[s'] },
  Secret: {
    metadata: [1, 'ObjectMeta'], immutable: [5, 'b', 'p'], data: [2, '{y'], stringData: [4, '{s'], type: [3, S],
  },
  ServiceAccount: {
    metadata: [1, 'ObjectMeta'], secrets: [2, '[ObjectReference'], imagePullSecrets: [3, '[LocalObjectReference'],
    automountServiceAccountToken: [4, 'b', 'p'],
  },
  ObjectReference: {
    kind: [1, S], namespace: [2, S], name: [3, S], uid: [4, S], apiVersion: [5, S], resourceVersion: [6, S],
    fieldPath: [7, S],
  },
  LocalObjectReference: { name: [1, S] },
  Binding: { metadata: [1, 'ObjectMeta'], target: [2, 'ObjectReference'] },
  // policy/v1 (and v1beta1) Eviction: what kubectl drain posts to pods/eviction.
  Eviction: { metadata: [1, 'ObjectMeta'], deleteOptions: [2, 'DeleteOptions', 'p'] },
  // authentication.k8s.io/v1 TokenRequest: what kubectl create token posts to serviceaccounts/token.
  TokenRequest: { metadata: [1, 'ObjectMeta'], spec: [2, 'TokenRequestSpec'], status: [3, 'TokenRequestStatus'] },
  TokenRequestSpec: { audiences: [1, '[s', 'r'], expirationSeconds: [4, 'l', 'p'], boundObjectRef: [3, 'BoundObjectReference', 'p'] },
  BoundObjectReference: { kind: [1, S], apiVersion: [2, S], name: [3, S], uid: [4, S] },
  TokenRequestStatus: { token: [1, S, 'r'], expirationTimestamp: [2, 'Time'] },

  // --- core/v1: Service ---
  Service: { metadata: [1, 'ObjectMeta'], spec: [2, 'ServiceSpec'], status: [3, 'ServiceStatus'] },
  ServiceSpec: {
    ports: [1, '[ServicePort'], selector: [2, '{s'], clusterIP: [3, S], clusterIPs: [18, '[s'], type: [4, S],
    externalIPs: [5, '[s'], sessionAffinity: [7, S], loadBalancerIP: [8, S], loadBalancerSourceRanges: [9, '[s'],
    externalName: [10, S], externalTrafficPolicy: [11, S], healthCheckNodePort: [12, 'i'],
    publishNotReadyAddresses: [13, 'b'], sessionAffinityConfig: [14, 'SessionAffinityConfig', 'p'],
    ipFamilies: [19, '[s'], ipFamilyPolicy: [17, S, 'p'], allocateLoadBalancerNodePorts: [20, 'b', 'p'],
    loadBalancerClass: [21, S, 'p'], internalTrafficPolicy: [22, S, 'p'], trafficDistribution: [23, S, 'p'],
  },
  ServicePort: {
    name: [1, S], protocol: [2, S], appProtocol: [6, S, 'p'], port: [3, 'i', 'r'], targetPort: [4, 'IntOrString'],
    nodePort: [5, 'i'],
  },
  SessionAffinityConfig: { clientIP: [1, 'ClientIPConfig', 'p'] },
  ClientIPConfig: { timeoutSeconds: [1, 'i', 'p'] },
  ServiceStatus: { loadBalancer: [1, 'LoadBalancerStatus'], conditions: [2, '[Condition'] },
  LoadBalancerStatus: { ingress: [1, '[LoadBalancerIngress'] },
  LoadBalancerIngress: { ip: [1, S], hostname: [2, S], ipMode: [3, S, 'p'], ports: [4, '[PortStatus'] },
  PortStatus: { port: [1, 'i', 'r'], protocol: [2, S, 'r'], error: [3, S, 'p'] },

  // --- core/v1: Pod (kubectl debug sends pods as protobuf) ---
  Pod: { metadata: [1, 'ObjectMeta'], spec: [2, 'PodSpec'], status: [3, 'PodStatus'] },
  PodSpec: {
    volumes: [1, '[Volume'], initContainers: [20, '[Container'], containers: [2, '[Container'],
    ephemeralContainers: [34, '[EphemeralContainer'], restartPolicy: [3, S],
    terminationGracePeriodSeconds: [4, 'l', 'p'], activeDeadlineSeconds: [5, 'l', 'p'], dnsPolicy: [6, S],
    nodeSelector: [7, '{s'], serviceAccountName: [8, S], serviceAccount: [9, S],
    automountServiceAccountToken: [21, 'b', 'p'], nodeName: [10, S], hostNetwork: [11, 'b'], hostPID: [12, 'b'],
    hostIPC: [13, 'b'], shareProcessNamespace: [27, 'b', 'p'], securityContext: [14, 'PodSecurityContext', 'p'],
    imagePullSecrets: [15, '[LocalObjectReference'], hostname: [16, S], subdomain: [17, S],
    affinity: [18, 'Affinity', 'p'], schedulerName: [19, S], tolerations: [22, '[Toleration'],
    hostAliases: [23, '[HostAlias'], priorityClassName: [24, S], priority: [25, 'i', 'p'],
    dnsConfig: [26, 'PodDNSConfig', 'p'], readinessGates: [28, '[PodReadinessGate'], runtimeClassName: [29, S, 'p'],
    enableServiceLinks: [30, 'b', 'p'], preemptionPolicy: [31, S, 'p'], overhead: [32, '{Quantity'],
    topologySpreadConstraints: [33, '[TopologySpreadConstraint'], setHostnameAsFQDN: [35, 'b', 'p'],
    os: [36, 'PodOS', 'p'], hostUsers: [37, 'b', 'p'], schedulingGates: [38, '[PodSchedulingGate'],
    resourceClaims: [39, '[PodResourceClaim'], resources: [40, 'ResourceRequirements', 'p'],
    hostnameOverride: [41, S, 'p'], workloadRef: [42, 'WorkloadReference', 'p'],
  },
  Container: container,
  EphemeralContainerCommon: container,
  EphemeralContainer: { ephemeralContainerCommon: [1, 'EphemeralContainerCommon', 'i'], targetContainerName: [2, S] },
  ContainerPort: { name: [1, S], hostPort: [2, 'i'], containerPort: [3, 'i', 'r'], protocol: [4, S], hostIP: [5, S] },
  ContainerResizePolicy: { resourceName: [1, S, 'r'], restartPolicy: [2, S, 'r'] },
  ContainerRestartRule: { action: [1, S], exitCodes: [2, 'ContainerRestartRuleOnExitCodes', 'p'] },
  ContainerRestartRuleOnExitCodes: { operator: [1, S], values: [2, '[i'] },
  EnvFromSource: { prefix: [1, S], configMapRef: [2, 'ConfigMapEnvSource', 'p'], secretRef: [3, 'SecretEnvSource', 'p'] },
  ConfigMapEnvSource: envSource,
  SecretEnvSource: envSource,
  EnvVar: { name: [1, S, 'r'], value: [2, S], valueFrom: [3, 'EnvVarSource', 'p'] },
  EnvVarSource: {
    fieldRef: [1, 'ObjectFieldSelector', 'p'], resourceFieldRef: [2, 'ResourceFieldSelector', 'p'],
    configMapKeyRef: [3, 'ConfigMapKeySelector', 'p'], secretKeyRef: [4, 'SecretKeySelector', 'p'],
    fileKeyRef: [5, 'FileKeySelector', 'p'],
  },
  ObjectFieldSelector: { apiVersion: [1, S], fieldPath: [2, S, 'r'] },
  ResourceFieldSelector: { containerName: [1, S], resource: [2, S, 'r'], divisor: [3, 'Quantity'] },
  ConfigMapKeySelector: keySelector,
  SecretKeySelector: keySelector,
  FileKeySelector: { volumeName: [1, S, 'r'], path: [2, S, 'r'], key: [3, S, 'r'], optional: [4, 'b', 'p'] },
  ResourceRequirements: { ...resources, claims: [3, '[ResourceClaim'] },
  VolumeResourceRequirements: resources,
  ResourceClaim: { name: [1, S, 'r'], request: [2, S] },
  VolumeMount: {
    name: [1, S, 'r'], readOnly: [2, 'b'], recursiveReadOnly: [7, S, 'p'], mountPath: [3, S, 'r'], subPath: [4, S],
    mountPropagation: [5, S, 'p'], subPathExpr: [6, S],
  },
  VolumeDevice: { name: [1, S, 'r'], devicePath: [2, S, 'r'] },
  Probe: {
    handler: [1, 'ProbeHandler', 'i'], initialDelaySeconds: [2, 'i'], timeoutSeconds: [3, 'i'], periodSeconds: [4, 'i'],
    successThreshold: [5, 'i'], failureThreshold: [6, 'i'], terminationGracePeriodSeconds: [7, 'l', 'p'],
  },
  ProbeHandler: { ...handler, grpc: [4, 'GRPCAction', 'p'] },
  LifecycleHandler: { ...handler, sleep: [4, 'SleepAction', 'p'] },
  Lifecycle: { postStart: [1, 'LifecycleHandler', 'p'], preStop: [2, 'LifecycleHandler', 'p'], stopSignal: [3, S, 'p'] },
  ExecAction: { command: [1, '[s'] },
  HTTPGetAction: {
    path: [1, S], port: [2, 'IntOrString', 'r'], host: [3, S], scheme: [4, S], httpHeaders: [5, '[HTTPHeader'],
  },
  HTTPHeader: { name: [1, S, 'r'], value: [2, S, 'r'] },
  TCPSocketAction: { port: [1, 'IntOrString', 'r'], host: [2, S] },
  GRPCAction: { port: [1, 'i', 'r'], service: [2, S, 'p'] },
  SleepAction: { seconds: [1, 'l', 'r'] },
  SecurityContext: {
    capabilities: [1, 'Capabilities', 'p'], privileged: [2, 'b', 'p'], seLinuxOptions: [3, 'SELinuxOptions', 'p'],
    windowsOptions: [10, 'WindowsSecurityContextOptions', 'p'], runAsUser: [4, 'l', 'p'], runAsGroup: [8, 'l', 'p'],
    runAsNonRoot: [5, 'b', 'p'], readOnlyRootFilesystem: [6, 'b', 'p'], allowPrivilegeEscalation: [7, 'b', 'p'],
    procMount: [9, S, 'p'], seccompProfile: [11, 'SeccompProfile', 'p'], appArmorProfile: [12, 'AppArmorProfile', 'p'],
    ulimits: [13, '[Ulimit'],
  },
  PodSecurityContext: {
    seLinuxOptions: [1, 'SELinuxOptions', 'p'], windowsOptions: [8, 'WindowsSecurityContextOptions', 'p'],
    runAsUser: [2, 'l', 'p'], runAsGroup: [6, 'l', 'p'], runAsNonRoot: [3, 'b', 'p'], supplementalGroups: [4, '[l'],
    supplementalGroupsPolicy: [12, S, 'p'], fsGroup: [5, 'l', 'p'], sysctls: [7, '[Sysctl'],
    fsGroupChangePolicy: [9, S, 'p'], seccompProfile: [10, 'SeccompProfile', 'p'],
    appArmorProfile: [11, 'AppArmorProfile', 'p'], seLinuxChangePolicy: [13, S, 'p'],
  },
  Capabilities: { add: [1, '[s'], drop: [2, '[s'] },
  SELinuxOptions: { user: [1, S], role: [2, S], type: [3, S], level: [4, S] },
  WindowsSecurityContextOptions: {
    gmsaCredentialSpecName: [1, S, 'p'], gmsaCredentialSpec: [2, S, 'p'], runAsUserName: [3, S, 'p'],
    hostProcess: [4, 'b', 'p'],
  },
  SeccompProfile: profile,
  AppArmorProfile: profile,
  Ulimit: { name: [1, S, 'r'], hard: [2, 'l', 'r'], soft: [3, 'l', 'r'] },
  Sysctl: { name: [1, S, 'r'], value: [2, S, 'r'] },
  Affinity: {
    nodeAffinity: [1, 'NodeAffinity', 'p'], podAffinity: [2, 'PodAffinity', 'p'],
    podAntiAffinity: [3, 'PodAntiAffinity', 'p'],
  },
  NodeAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: [1, 'NodeSelector', 'p'],
    preferredDuringSchedulingIgnoredDuringExecution: [2, '[PreferredSchedulingTerm'],
  },
  NodeSelector: { nodeSelectorTerms: [1, '[NodeSelectorTerm'] },
  NodeSelectorTerm: { matchExpressions: [1, '[NodeSelectorRequirement'], matchFields: [2, '[NodeSelectorRequirement'] },
  NodeSelectorRequirement: { key: [1, S, 'r'], operator: [2, S, 'r'], values: [3, '[s'] },
  PreferredSchedulingTerm: { weight: [1, 'i', 'r'], preference: [2, 'NodeSelectorTerm'] },
  PodAffinity: podAffinity,
  PodAntiAffinity: podAffinity,
  PodAffinityTerm: {
    labelSelector: [1, 'LabelSelector', 'p'], namespaces: [2, '[s'], topologyKey: [3, S, 'r'],
    namespaceSelector: [4, 'LabelSelector', 'p'], matchLabelKeys: [5, '[s'], mismatchLabelKeys: [6, '[s'],
  },
  WeightedPodAffinityTerm: { weight: [1, 'i', 'r'], podAffinityTerm: [2, 'PodAffinityTerm'] },
  Toleration: { key: [1, S], operator: [2, S], value: [3, S], effect: [4, S], tolerationSeconds: [5, 'l', 'p'] },
  HostAlias: { ip: [1, S, 'r'], hostnames: [2, '[s'] },
  PodDNSConfig: { nameservers: [1, '[s'], searches: [2, '[s'], options: [3, '[PodDNSConfigOption'] },
  PodDNSConfigOption: { name: [1, S], value: [2, S, 'p'] },
  PodReadinessGate: { conditionType: [1, S, 'r'] },
  TopologySpreadConstraint: {
    maxSkew: [1, 'i', 'r'], topologyKey: [2, S, 'r'], whenUnsatisfiable: [3, S, 'r'],
    labelSelector: [4, 'LabelSelector', 'p'], minDomains: [5, 'i', 'p'], nodeAffinityPolicy: [6, S, 'p'],
    nodeTaintsPolicy: [7, S, 'p'], matchLabelKeys: [8, '[s'],
  },
  PodOS: nameOnly,
  PodSchedulingGate: nameOnly,
  PodResourceClaim: { name: [1, S, 'r'], resourceClaimName: [3, S, 'p'], resourceClaimTemplateName: [4, S, 'p'] },
  WorkloadReference: { name: [1, S, 'r'], podGroup: [2, S, 'r'], podGroupReplicaKey: [3, S] },

  // Volumes: every source is a pointer in VolumeSource, which Volume embeds.
  Volume: { name: [1, S, 'r'], volumeSource: [2, 'VolumeSource', 'i'] },
  VolumeSource: {
    hostPath: [1, 'HostPathVolumeSource', 'p'], emptyDir: [2, 'EmptyDirVolumeSource', 'p'],
    gcePersistentDisk: [3, 'GCEPersistentDiskVolumeSource', 'p'],
    awsElasticBlockStore: [4, 'AWSElasticBlockStoreVolumeSource', 'p'], gitRepo: [5, 'GitRepoVolumeSource', 'p'],
    secret: [6, 'SecretVolumeSource', 'p'], nfs: [7, 'NFSVolumeSource', 'p'], iscsi: [8, 'ISCSIVolumeSource', 'p'],
    glusterfs: [9, 'GlusterfsVolumeSource', 'p'],
    persistentVolumeClaim: [10, 'PersistentVolumeClaimVolumeSource', 'p'], rbd: [11, 'RBDVolumeSource', 'p'],
    flexVolume: [12, 'FlexVolumeSource', 'p'], cinder: [13, 'CinderVolumeSource', 'p'],
    cephfs: [14, 'CephFSVolumeSource', 'p'], flocker: [15, 'FlockerVolumeSource', 'p'],
    downwardAPI: [16, 'DownwardAPIVolumeSource', 'p'], fc: [17, 'FCVolumeSource', 'p'],
    azureFile: [18, 'AzureFileVolumeSource', 'p'], configMap: [19, 'ConfigMapVolumeSource', 'p'],
    vsphereVolume: [20, 'VsphereVirtualDiskVolumeSource', 'p'], quobyte: [21, 'QuobyteVolumeSource', 'p'],
    azureDisk: [22, 'AzureDiskVolumeSource', 'p'], photonPersistentDisk: [23, 'PhotonPersistentDiskVolumeSource', 'p'],
    projected: [26, 'ProjectedVolumeSource', 'p'], portworxVolume: [24, 'PortworxVolumeSource', 'p'],
    scaleIO: [25, 'ScaleIOVolumeSource', 'p'], storageos: [27, 'StorageOSVolumeSource', 'p'],
    csi: [28, 'CSIVolumeSource', 'p'], ephemeral: [29, 'EphemeralVolumeSource', 'p'],
    image: [30, 'ImageVolumeSource', 'p'],
  },
  HostPathVolumeSource: { path: [1, S, 'r'], type: [2, S, 'p'] },
  EmptyDirVolumeSource: { medium: [1, S], sizeLimit: [2, 'Quantity', 'p'] },
  SecretVolumeSource: {
    secretName: [1, S], items: [2, '[KeyToPath'], defaultMode: [3, 'i', 'p'], optional: [4, 'b', 'p'],
  },
  ConfigMapVolumeSource: { ...projection, defaultMode: [3, 'i', 'p'] },
  KeyToPath: { key: [1, S, 'r'], path: [2, S, 'r'], mode: [3, 'i', 'p'] },
  PersistentVolumeClaimVolumeSource: { claimName: [1, S, 'r'], readOnly: [2, 'b'] },
  DownwardAPIVolumeSource: { items: [1, '[DownwardAPIVolumeFile'], defaultMode: [2, 'i', 'p'] },
  DownwardAPIVolumeFile: {
    path: [1, S, 'r'], fieldRef: [2, 'ObjectFieldSelector', 'p'], resourceFieldRef: [3, 'ResourceFieldSelector', 'p'],
    mode: [4, 'i', 'p'],
  },
  ProjectedVolumeSource: { sources: [1, '[VolumeProjection'], defaultMode: [2, 'i', 'p'] },
  VolumeProjection: {
    secret: [1, 'SecretProjection', 'p'], downwardAPI: [2, 'DownwardAPIProjection', 'p'],
    configMap: [3, 'ConfigMapProjection', 'p'], serviceAccountToken: [4, 'ServiceAccountTokenProjection', 'p'],
    clusterTrustBundle: [5, 'ClusterTrustBundleProjection', 'p'], podCertificate: [6, 'PodCertificateProjection', 'p'],
  },
  SecretProjection: projection,
  ConfigMapProjection: projection,
  DownwardAPIProjection: { items: [1, '[DownwardAPIVolumeFile'] },
  ServiceAccountTokenProjection: { audience: [1, S], expirationSeconds: [2, 'l', 'p'], path: [3, S, 'r'] },
  ClusterTrustBundleProjection: {
    name: [1, S, 'p'], signerName: [2, S, 'p'], labelSelector: [3, 'LabelSelector', 'p'], optional: [5, 'b', 'p'],
    path: [4, S, 'r'],
  },
  PodCertificateProjection: {
    signerName: [1, S], keyType: [2, S], maxExpirationSeconds: [3, 'i', 'p'], credentialBundlePath: [4, S],
    keyPath: [5, S], certificateChainPath: [6, S], userAnnotations: [7, '{s'],
  },
  CSIVolumeSource: {
    driver: [1, S, 'r'], readOnly: [2, 'b', 'p'], fsType: [3, S, 'p'], volumeAttributes: [4, '{s'],
    nodePublishSecretRef: [5, 'LocalObjectReference', 'p'],
  },
  EphemeralVolumeSource: { volumeClaimTemplate: [1, 'PersistentVolumeClaimTemplate', 'p'] },
  PersistentVolumeClaimTemplate: { metadata: [1, 'ObjectMeta'], spec: [2, 'PersistentVolumeClaimSpec'] },
  PersistentVolumeClaimSpec: {
    accessModes: [1, '[s'], selector: [4, 'LabelSelector', 'p'], resources: [2, 'VolumeResourceRequirements'],
    volumeName: [3, S], storageClassName: [5, S, 'p'], volumeMode: [6, S, 'p'],
    dataSource: [7, 'TypedLocalObjectReference', 'p'], dataSourceRef: [8, 'TypedObjectReference', 'p'],
    volumeAttributesClassName: [9, S, 'p'],
  },
  TypedLocalObjectReference: typedRef,
  TypedObjectReference: { ...typedRef, namespace: [4, S, 'p'] },
  ImageVolumeSource: { reference: [1, S], pullPolicy: [2, S] },
  NFSVolumeSource: { server: [1, S, 'r'], path: [2, S, 'r'], readOnly: [3, 'b'] },
  GCEPersistentDiskVolumeSource: { pdName: [1, S, 'r'], fsType: [2, S], partition: [3, 'i'], readOnly: [4, 'b'] },
  AWSElasticBlockStoreVolumeSource: { volumeID: [1, S, 'r'], fsType: [2, S], partition: [3, 'i'], readOnly: [4, 'b'] },
  GitRepoVolumeSource: { repository: [1, S, 'r'], revision: [2, S], directory: [3, S] },
  ISCSIVolumeSource: {
    targetPortal: [1, S, 'r'], iqn: [2, S, 'r'], lun: [3, 'i', 'r'], iscsiInterface: [4, S], fsType: [5, S],
    readOnly: [6, 'b'], portals: [7, '[s'], chapAuthDiscovery: [8, 'b'], chapAuthSession: [11, 'b'],
    secretRef: [10, 'LocalObjectReference', 'p'], initiatorName: [12, S, 'p'],
  },
  GlusterfsVolumeSource: { endpoints: [1, S, 'r'], path: [2, S, 'r'], readOnly: [3, 'b'] },
  RBDVolumeSource: {
    monitors: [1, '[s'], image: [2, S, 'r'], fsType: [3, S], pool: [4, S], user: [5, S], keyring: [6, S],
    secretRef: [7, 'LocalObjectReference', 'p'], readOnly: [8, 'b'],
  },
  FlexVolumeSource: {
    driver: [1, S, 'r'], fsType: [2, S], secretRef: [3, 'LocalObjectReference', 'p'], readOnly: [4, 'b'],
    options: [5, '{s'],
  },
  CinderVolumeSource: {
    volumeID: [1, S, 'r'], fsType: [2, S], readOnly: [3, 'b'], secretRef: [4, 'LocalObjectReference', 'p'],
  },
  CephFSVolumeSource: {
    monitors: [1, '[s'], path: [2, S], user: [3, S], secretFile: [4, S], secretRef: [5, 'LocalObjectReference', 'p'],
    readOnly: [6, 'b'],
  },
  FlockerVolumeSource: { datasetName: [1, S], datasetUUID: [2, S] },
  FCVolumeSource: { targetWWNs: [1, '[s'], lun: [2, 'i', 'p'], fsType: [3, S], readOnly: [4, 'b'], wwids: [5, '[s'] },
  AzureFileVolumeSource: { secretName: [1, S, 'r'], shareName: [2, S, 'r'], readOnly: [3, 'b'] },
  VsphereVirtualDiskVolumeSource: {
    volumePath: [1, S, 'r'], fsType: [2, S], storagePolicyName: [3, S], storagePolicyID: [4, S],
  },
  QuobyteVolumeSource: {
    registry: [1, S, 'r'], volume: [2, S, 'r'], readOnly: [3, 'b'], user: [4, S], group: [5, S], tenant: [6, S],
  },
  AzureDiskVolumeSource: {
    diskName: [1, S, 'r'], diskURI: [2, S, 'r'], cachingMode: [3, S, 'p'], fsType: [4, S, 'p'],
    readOnly: [5, 'b', 'p'], kind: [6, S, 'p'],
  },
  PhotonPersistentDiskVolumeSource: { pdID: [1, S, 'r'], fsType: [2, S] },
  PortworxVolumeSource: { volumeID: [1, S, 'r'], fsType: [2, S], readOnly: [3, 'b'] },
  ScaleIOVolumeSource: {
    gateway: [1, S, 'r'], system: [2, S, 'r'], secretRef: [3, 'LocalObjectReference', 'p'], sslEnabled: [4, 'b'],
    protectionDomain: [5, S], storagePool: [6, S], storageMode: [7, S], volumeName: [8, S], fsType: [9, S],
    readOnly: [10, 'b'],
  },
  StorageOSVolumeSource: {
    volumeName: [1, S], volumeNamespace: [2, S], fsType: [3, S], readOnly: [4, 'b'],
    secretRef: [5, 'LocalObjectReference', 'p'],
  },

  // Pod status (kubectl sends it empty; decoded for completeness).
  PodStatus: {
    observedGeneration: [17, 'l'], phase: [1, S], conditions: [2, '[PodCondition'], message: [3, S], reason: [4, S],
    nominatedNodeName: [11, S], hostIP: [5, S], hostIPs: [16, '[HostIP'], podIP: [6, S], podIPs: [12, '[PodIP'],
    startTime: [7, 'Time', 'p'], initContainerStatuses: [10, '[ContainerStatus'],
    containerStatuses: [8, '[ContainerStatus'], qosClass: [9, S], ephemeralContainerStatuses: [13, '[ContainerStatus'],
    resize: [14, S], resourceClaimStatuses: [15, '[PodResourceClaimStatus'],
    extendedResourceClaimStatus: [18, 'PodExtendedResourceClaimStatus', 'p'], allocatedResources: [19, '{Quantity'],
    resources: [20, 'ResourceRequirements', 'p'],
  },
  PodCondition: {
    type: [1, S, 'r'], observedGeneration: [7, 'l'], status: [2, S, 'r'], lastProbeTime: [3, 'Time'],
    lastTransitionTime: [4, 'Time'], reason: [5, S], message: [6, S],
  },
  HostIP: ip,
  PodIP: ip,
  ContainerStatus: {
    name: [1, S, 'r'], state: [2, 'ContainerState'], lastState: [3, 'ContainerState'], ready: [4, 'b', 'r'],
    restartCount: [5, 'i', 'r'], image: [6, S, 'r'], imageID: [7, S, 'r'], containerID: [8, S], started: [9, 'b', 'p'],
    allocatedResources: [10, '{Quantity'], resources: [11, 'ResourceRequirements', 'p'],
    volumeMounts: [12, '[VolumeMountStatus'], user: [13, 'ContainerUser', 'p'],
    allocatedResourcesStatus: [14, '[ResourceStatus'], stopSignal: [15, S, 'p'],
  },
  ContainerState: {
    waiting: [1, 'ContainerStateWaiting', 'p'], running: [2, 'ContainerStateRunning', 'p'],
    terminated: [3, 'ContainerStateTerminated', 'p'],
  },
  ContainerStateWaiting: { reason: [1, S], message: [2, S] },
  ContainerStateRunning: { startedAt: [1, 'Time'] },
  ContainerStateTerminated: {
    exitCode: [1, 'i', 'r'], signal: [2, 'i'], reason: [3, S], message: [4, S], startedAt: [5, 'Time'],
    finishedAt: [6, 'Time'], containerID: [7, S],
  },
  VolumeMountStatus: {
    name: [1, S, 'r'], mountPath: [2, S, 'r'], readOnly: [3, 'b'], recursiveReadOnly: [4, S, 'p'],
    volumeStatus: [5, 'VolumeStatus', 'i'],
  },
  VolumeStatus: { image: [1, 'ImageVolumeStatus', 'p'] },
  ImageVolumeStatus: { imageRef: [1, S, 'r'] },
  ContainerUser: { linux: [1, 'LinuxContainerUser', 'p'] },
  LinuxContainerUser: { uid: [1, 'l', 'r'], gid: [2, 'l', 'r'], supplementalGroups: [3, '[l'] },
  ResourceStatus: { name: [1, S, 'r'], resources: [2, '[ResourceHealth'] },
  ResourceHealth: { resourceID: [1, S, 'r'], health: [2, S], message: [6, S, 'p'] },
  PodResourceClaimStatus: { name: [1, S, 'r'], resourceClaimName: [2, S, 'p'] },
  PodExtendedResourceClaimStatus: {
    requestMappings: [1, '[ContainerExtendedResourceRequest'], resourceClaimName: [2, S, 'r'],
  },
  ContainerExtendedResourceRequest: { containerName: [1, S, 'r'], resourceName: [2, S, 'r'], requestName: [3, S, 'r'] },

  // --- what kubectl create priorityclass / poddisruptionbudget / ingress send ---
  PriorityClass: {
    metadata: [1, 'ObjectMeta'], value: [2, 'i', 'r'], globalDefault: [3, 'b'], description: [4, S], preemptionPolicy: [5, S, 'p'],
  },
  PodDisruptionBudget: { metadata: [1, 'ObjectMeta'], spec: [2, 'PodDisruptionBudgetSpec'], status: [3, 'PodDisruptionBudgetStatus'] },
  PodDisruptionBudgetSpec: {
    minAvailable: [1, 'IntOrString', 'p'], selector: [2, 'LabelSelector', 'p'], maxUnavailable: [3, 'IntOrString', 'p'],
    unhealthyPodEvictionPolicy: [4, S, 'p'],
  },
  PodDisruptionBudgetStatus: {
    observedGeneration: [1, 'l'], disruptedPods: [2, '{Time'], disruptionsAllowed: [3, 'i', 'r'], currentHealthy: [4, 'i', 'r'],
    desiredHealthy: [5, 'i', 'r'], expectedPods: [6, 'i', 'r'], conditions: [7, '[Condition'],
  },
  Ingress: { metadata: [1, 'ObjectMeta'], spec: [2, 'IngressSpec'], status: [3, 'IngressStatus'] },
  IngressSpec: {
    ingressClassName: [4, S, 'p'], defaultBackend: [1, 'IngressBackend', 'p'], tls: [2, '[IngressTLS'], rules: [3, '[IngressRule'],
  },
  IngressBackend: { service: [4, 'IngressServiceBackend', 'p'], resource: [3, 'TypedLocalObjectReference', 'p'] },
  IngressServiceBackend: { name: [1, S, 'r'], port: [2, 'ServiceBackendPort'] },
  ServiceBackendPort: { name: [1, S], number: [2, 'i'] },
  IngressRule: { host: [1, S], ingressRuleValue: [2, 'IngressRuleValue', 'i'] },
  IngressRuleValue: { http: [1, 'HTTPIngressRuleValue', 'p'] },
  HTTPIngressRuleValue: { paths: [1, '[HTTPIngressPath'] },
  HTTPIngressPath: { path: [1, S], pathType: [3, S, 'p'], backend: [2, 'IngressBackend', 'p'] },
  IngressTLS: { hosts: [1, '[s'], secretName: [2, S] },
  IngressStatus: { loadBalancer: [1, 'IngressLoadBalancerStatus'] },
  IngressLoadBalancerStatus: { ingress: [1, '[IngressLoadBalancerIngress'] },
  IngressLoadBalancerIngress: { ip: [1, S], hostname: [2, S], ports: [4, '[PortStatus'] },

  // --- what kubectl create deployment sends (k8s.io/api/apps/v1) ---
  PodTemplateSpec: { metadata: [1, 'ObjectMeta'], spec: [2, 'PodSpec'] },
  Deployment: { metadata: [1, 'ObjectMeta'], spec: [2, 'DeploymentSpec'], status: [3, 'DeploymentStatus'] },
  DeploymentSpec: {
    replicas: [1, 'i', 'p'], selector: [2, 'LabelSelector', 'p'], template: [3, 'PodTemplateSpec'], strategy: [4, 'DeploymentStrategy'],
    minReadySeconds: [5, 'i'], revisionHistoryLimit: [6, 'i', 'p'], paused: [7, 'b'], progressDeadlineSeconds: [9, 'i', 'p'],
  },
  DeploymentStrategy: { type: [1, S], rollingUpdate: [2, 'RollingUpdateDeployment', 'p'] },
  RollingUpdateDeployment: { maxUnavailable: [1, 'IntOrString', 'p'], maxSurge: [2, 'IntOrString', 'p'] },
  DeploymentStatus: {
    observedGeneration: [1, 'l'], replicas: [2, 'i'], updatedReplicas: [3, 'i'], readyReplicas: [7, 'i'], availableReplicas: [4, 'i'],
    unavailableReplicas: [5, 'i'], conditions: [6, '[DeploymentCondition'], collisionCount: [8, 'i', 'p'],
  },
  DeploymentCondition: {
    type: [1, S, 'r'], status: [2, S, 'r'], lastUpdateTime: [6, 'Time'], lastTransitionTime: [7, 'Time'], reason: [4, S], message: [5, S],
  },
  // --- what kubectl create job / cronjob sends (k8s.io/api/batch/v1) ---
  Job: { metadata: [1, 'ObjectMeta'], spec: [2, 'JobSpec'], status: [3, 'JobStatus'] },
  JobSpec: {
    parallelism: [1, 'i', 'p'], completions: [2, 'i', 'p'], activeDeadlineSeconds: [3, 'l', 'p'], podFailurePolicy: [11, 'PodFailurePolicy', 'p'],
    successPolicy: [16, 'SuccessPolicy', 'p'], backoffLimit: [7, 'i', 'p'], backoffLimitPerIndex: [12, 'i', 'p'], maxFailedIndexes: [13, 'i', 'p'],
    selector: [4, 'LabelSelector', 'p'], manualSelector: [5, 'b', 'p'], template: [6, 'PodTemplateSpec'], ttlSecondsAfterFinished: [8, 'i', 'p'],
    completionMode: [9, S, 'p'], suspend: [10, 'b', 'p'], podReplacementPolicy: [14, S, 'p'], managedBy: [15, S, 'p'],
  },
  PodFailurePolicy: { rules: [1, '[PodFailurePolicyRule'] },
  PodFailurePolicyRule: { action: [1, S, 'r'], onExitCodes: [2, 'PodFailurePolicyOnExitCodesRequirement', 'p'], onPodConditions: [3, '[PodFailurePolicyOnPodConditionsPattern'] },
  PodFailurePolicyOnExitCodesRequirement: { containerName: [1, S, 'p'], operator: [2, S, 'r'], values: [3, '[i'] },
  PodFailurePolicyOnPodConditionsPattern: { type: [1, S, 'r'], status: [2, S] },
  SuccessPolicy: { rules: [1, '[SuccessPolicyRule'] },
  SuccessPolicyRule: { succeededIndexes: [1, S, 'p'], succeededCount: [2, 'i', 'p'] },
  JobStatus: {
    conditions: [1, '[JobCondition'], startTime: [2, 'Time', 'p'], completionTime: [3, 'Time', 'p'], active: [4, 'i'], succeeded: [5, 'i'],
    failed: [6, 'i'], terminating: [11, 'i', 'p'], completedIndexes: [7, S], failedIndexes: [10, S, 'p'],
    uncountedTerminatedPods: [8, 'UncountedTerminatedPods', 'p'], ready: [9, 'i', 'p'],
  },
  JobCondition: {
    type: [1, S, 'r'], status: [2, S, 'r'], lastProbeTime: [3, 'Time'], lastTransitionTime: [4, 'Time'], reason: [5, S], message: [6, S],
  },
  UncountedTerminatedPods: { succeeded: [1, '[s'], failed: [2, '[s'] },
  CronJob: { metadata: [1, 'ObjectMeta'], spec: [2, 'CronJobSpec'], status: [3, 'CronJobStatus'] },
  CronJobSpec: {
    schedule: [1, S, 'r'], timeZone: [8, S, 'p'], startingDeadlineSeconds: [2, 'l', 'p'], concurrencyPolicy: [3, S], suspend: [4, 'b', 'p'],
    jobTemplate: [5, 'JobTemplateSpec'], successfulJobsHistoryLimit: [6, 'i', 'p'], failedJobsHistoryLimit: [7, 'i', 'p'],
  },
  JobTemplateSpec: { metadata: [1, 'ObjectMeta'], spec: [2, 'JobSpec'] },
  CronJobStatus: { active: [1, '[ObjectReference'], lastScheduleTime: [4, 'Time', 'p'], lastSuccessfulTime: [5, 'Time', 'p'] },
  // --- rbac.authorization.k8s.io/v1 (kubectl create role/clusterrole/rolebinding/clusterrolebinding) ---
  Role: { metadata: [1, 'ObjectMeta'], rules: [2, '[PolicyRule'] },
  ClusterRole: { metadata: [1, 'ObjectMeta'], rules: [2, '[PolicyRule'], aggregationRule: [3, 'AggregationRule', 'p'] },
  AggregationRule: { clusterRoleSelectors: [1, '[LabelSelector'] },
  PolicyRule: { verbs: [1, '[s'], apiGroups: [2, '[s'], resources: [3, '[s'], resourceNames: [4, '[s'], nonResourceURLs: [5, '[s'] },
  RoleBinding: { metadata: [1, 'ObjectMeta'], subjects: [2, '[Subject'], roleRef: [3, 'RoleRef'] },
  ClusterRoleBinding: { metadata: [1, 'ObjectMeta'], subjects: [2, '[Subject'], roleRef: [3, 'RoleRef'] },
  RoleRef: { apiGroup: [1, S, 'r'], kind: [2, S, 'r'], name: [3, S, 'r'] },
  Subject: { kind: [1, S, 'r'], apiGroup: [2, S], name: [3, S, 'r'], namespace: [4, S] },
  // --- what kubectl auth can-i [--list] and auth whoami send (k8s.io/api/authorization/v1, authentication/v1).
  // SubjectAccessReviewSpec.extra (map<string, ExtraValue>) is not decoded: no kubectl command sends it.
  SelfSubjectAccessReview: { metadata: [1, 'ObjectMeta'], spec: [2, 'SelfSubjectAccessReviewSpec'] },
  SelfSubjectAccessReviewSpec: { resourceAttributes: [1, 'ResourceAttributes', 'p'], nonResourceAttributes: [2, 'NonResourceAttributes', 'p'] },
  SubjectAccessReview: { metadata: [1, 'ObjectMeta'], spec: [2, 'SubjectAccessReviewSpec'] },
  SubjectAccessReviewSpec: {
    resourceAttributes: [1, 'ResourceAttributes', 'p'], nonResourceAttributes: [2, 'NonResourceAttributes', 'p'], user: [3, S], groups: [4, '[s'], uid: [6, S],
  },
  ResourceAttributes: {
    namespace: [1, S], verb: [2, S], group: [3, S], version: [4, S], resource: [5, S], subresource: [6, S], name: [7, S],
    fieldSelector: [8, 'FieldSelectorAttributes', 'p'], labelSelector: [9, 'LabelSelectorAttributes', 'p'],
  },
  FieldSelectorAttributes: { rawSelector: [1, S], requirements: [2, '[FieldSelectorRequirement'] },
  FieldSelectorRequirement: { key: [1, S, 'r'], operator: [2, S, 'r'], values: [3, '[s'] },
  LabelSelectorAttributes: { rawSelector: [1, S], requirements: [2, '[LabelSelectorRequirement'] },
  NonResourceAttributes: { path: [1, S], verb: [2, S] },
  SelfSubjectRulesReview: { metadata: [1, 'ObjectMeta'], spec: [2, 'SelfSubjectRulesReviewSpec'] },
  SelfSubjectRulesReviewSpec: { namespace: [1, S] },
  SelfSubjectReview: { metadata: [1, 'ObjectMeta'] },
  // --- autoscaling/v2 and v1 HorizontalPodAutoscaler (kubectl autoscale sends v1) ---
  HorizontalPodAutoscaler: { metadata: [1, 'ObjectMeta'], spec: [2, 'HorizontalPodAutoscalerSpec'], status: [3, 'HorizontalPodAutoscalerStatus'] },
  HorizontalPodAutoscalerSpec: {
    scaleTargetRef: [1, 'CrossVersionObjectReference'], minReplicas: [2, 'i', 'p'], maxReplicas: [3, 'i', 'r'], metrics: [4, '[MetricSpec'], behavior: [5, 'HorizontalPodAutoscalerBehavior', 'p'],
  },
  CrossVersionObjectReference: { kind: [1, S, 'r'], name: [2, S, 'r'], apiVersion: [3, S] },
  MetricSpec: {
    type: [1, S, 'r'], object: [2, 'ObjectMetricSource', 'p'], pods: [3, 'PodsMetricSource', 'p'], resource: [4, 'ResourceMetricSource', 'p'],
    containerResource: [7, 'ContainerResourceMetricSource', 'p'], external: [5, 'ExternalMetricSource', 'p'],
  },
  ObjectMetricSource: { describedObject: [1, 'CrossVersionObjectReference', 'r'], target: [2, 'MetricTarget', 'r'], metric: [3, 'MetricIdentifier', 'r'] },
  PodsMetricSource: { metric: [1, 'MetricIdentifier', 'r'], target: [2, 'MetricTarget', 'r'] },
  ResourceMetricSource: { name: [1, S, 'r'], target: [2, 'MetricTarget', 'r'] },
  ContainerResourceMetricSource: { name: [1, S, 'r'], target: [2, 'MetricTarget', 'r'], container: [3, S, 'r'] },
  ExternalMetricSource: { metric: [1, 'MetricIdentifier', 'r'], target: [2, 'MetricTarget', 'r'] },
  MetricIdentifier: { name: [1, S, 'r'], selector: [2, 'LabelSelector', 'p'] },
  MetricTarget: { type: [1, S, 'r'], value: [2, 'Quantity', 'p'], averageValue: [3, 'Quantity', 'p'], averageUtilization: [4, 'i', 'p'] },
  HorizontalPodAutoscalerBehavior: { scaleUp: [1, 'HPAScalingRules', 'p'], scaleDown: [2, 'HPAScalingRules', 'p'] },
  HPAScalingRules: { stabilizationWindowSeconds: [3, 'i', 'p'], selectPolicy: [1, S, 'p'], policies: [2, '[HPAScalingPolicy'] },
  HPAScalingPolicy: { type: [1, S, 'r'], value: [2, 'i', 'r'], periodSeconds: [3, 'i', 'r'] },
  HorizontalPodAutoscalerStatus: {
    observedGeneration: [1, 'l', 'p'], lastScaleTime: [2, 'Time', 'p'], currentReplicas: [3, 'i'], desiredReplicas: [4, 'i', 'r'],
    currentMetrics: [5, '[MetricStatus'], conditions: [6, '[HorizontalPodAutoscalerCondition'],
  },
  MetricStatus: {
    type: [1, S, 'r'], object: [2, 'ObjectMetricStatus', 'p'], pods: [3, 'PodsMetricStatus', 'p'], resource: [4, 'ResourceMetricStatus', 'p'],
    containerResource: [7, 'ContainerResourceMetricStatus', 'p'], external: [5, 'ExternalMetricStatus', 'p'],
  },
  ObjectMetricStatus: { metric: [1, 'MetricIdentifier', 'r'], current: [2, 'MetricValueStatus', 'r'], describedObject: [3, 'CrossVersionObjectReference', 'r'] },
  PodsMetricStatus: { metric: [1, 'MetricIdentifier', 'r'], current: [2, 'MetricValueStatus', 'r'] },
  ResourceMetricStatus: { name: [1, S, 'r'], current: [2, 'MetricValueStatus', 'r'] },
  ContainerResourceMetricStatus: { name: [1, S, 'r'], current: [2, 'MetricValueStatus', 'r'], container: [3, S, 'r'] },
  ExternalMetricStatus: { metric: [1, 'MetricIdentifier', 'r'], current: [2, 'MetricValueStatus', 'r'] },
  MetricValueStatus: { value: [1, 'Quantity', 'p'], averageValue: [2, 'Quantity', 'p'], averageUtilization: [3, 'i', 'p'] },
  HorizontalPodAutoscalerCondition: { type: [1, S, 'r'], status: [2, S, 'r'], lastTransitionTime: [3, 'Time'], reason: [4, S], message: [5, S] },
  HorizontalPodAutoscalerV1: { metadata: [1, 'ObjectMeta'], spec: [2, 'HorizontalPodAutoscalerSpecV1'], status: [3, 'HorizontalPodAutoscalerStatusV1'] },
  HorizontalPodAutoscalerSpecV1: {
    scaleTargetRef: [1, 'CrossVersionObjectReference'], minReplicas: [2, 'i', 'p'], maxReplicas: [3, 'i', 'r'], targetCPUUtilizationPercentage: [4, 'i', 'p'],
  },
  HorizontalPodAutoscalerStatusV1: {
    observedGeneration: [1, 'l', 'p'], lastScaleTime: [2, 'Time', 'p'], currentReplicas: [3, 'i', 'r'], desiredReplicas: [4, 'i', 'r'], currentCPUUtilizationPercentage: [5, 'i', 'p'],
  },
};

/** Kinds a protobuf request body may carry: kind → its message and the apiVersions it is served at. */
export const kinds: Readonly<Record<string, { message: string; apiVersions: readonly string[] | '*'; byVersion?: Readonly<Record<string, string>> }>> = {
  Namespace: { message: 'Namespace', apiVersions: ['v1'] },
  ConfigMap: { message: 'ConfigMap', apiVersions: ['v1'] },
  ResourceQuota: { message: 'ResourceQuota', apiVersions: ['v1'] },
  Secret: { message: 'Secret', apiVersions: ['v1'] },
  ServiceAccount: { message: 'ServiceAccount', apiVersions: ['v1'] },
  Service: { message: 'Service', apiVersions: ['v1'] },
  Pod: { message: 'Pod', apiVersions: ['v1'] },
  Binding: { message: 'Binding', apiVersions: ['v1'] },
  Eviction: { message: 'Eviction', apiVersions: ['policy/v1', 'policy/v1beta1'] },
  TokenRequest: { message: 'TokenRequest', apiVersions: ['authentication.k8s.io/v1'] },
  PriorityClass: { message: 'PriorityClass', apiVersions: ['scheduling.k8s.io/v1'] },
  PodDisruptionBudget: { message: 'PodDisruptionBudget', apiVersions: ['policy/v1'] },
  Ingress: { message: 'Ingress', apiVersions: ['networking.k8s.io/v1'] },
  Deployment: { message: 'Deployment', apiVersions: ['apps/v1'] },
  Job: { message: 'Job', apiVersions: ['batch/v1'] },
  CronJob: { message: 'CronJob', apiVersions: ['batch/v1'] },
  Role: { message: 'Role', apiVersions: ['rbac.authorization.k8s.io/v1'] },
  ClusterRole: { message: 'ClusterRole', apiVersions: ['rbac.authorization.k8s.io/v1'] },
  RoleBinding: { message: 'RoleBinding', apiVersions: ['rbac.authorization.k8s.io/v1'] },
  ClusterRoleBinding: { message: 'ClusterRoleBinding', apiVersions: ['rbac.authorization.k8s.io/v1'] },
  SelfSubjectAccessReview: { message: 'SelfSubjectAccessReview', apiVersions: ['authorization.k8s.io/v1'] },
  SubjectAccessReview: { message: 'SubjectAccessReview', apiVersions: ['authorization.k8s.io/v1'] },
  LocalSubjectAccessReview: { message: 'SubjectAccessReview', apiVersions: ['authorization.k8s.io/v1'] },
  SelfSubjectRulesReview: { message: 'SelfSubjectRulesReview', apiVersions: ['authorization.k8s.io/v1'] },
  SelfSubjectReview: { message: 'SelfSubjectReview', apiVersions: ['authentication.k8s.io/v1'] },
  // One kind, a message per version.
  HorizontalPodAutoscaler: { message: 'HorizontalPodAutoscaler', apiVersions: ['autoscaling/v2', 'autoscaling/v1'], byVersion: { 'autoscaling/v1': 'HorizontalPodAutoscalerV1' } },
  // DeleteOptions is registered in every group version (kubectl drain sends it as "v1").
  DeleteOptions: { message: 'DeleteOptions', apiVersions: '*' },
};
