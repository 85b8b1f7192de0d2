{{/* Names, labels and the operator's permissions, shared by every template. */}}

{{- define "kubetune.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubetune.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kubetune.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kubetune.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubetune
{{- end }}

{{/* The operator pods' labels; the NetworkPolicy, Service, PDB and probes select by them. */}}
{{- define "kubetune.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetune.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kubetune.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubetune.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubetune.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Image globs trainer and evaluator pods may run (KUBETUNE_ALLOWED_IMAGES and the admission
policy), as a JSON list: trainer.allowedImages, or just trainer.image when that is empty.
*/}}
{{- define "kubetune.allowedImages" -}}
{{- .Values.trainer.allowedImages | default (list .Values.trainer.image) | toJson }}
{{- end }}

{{/* Keep-annotation for objects that hold or define users' data. */}}
{{- define "kubetune.crdAnnotations" -}}
{{- if .Values.crds.keep }}
annotations:
  helm.sh/resource-policy: keep
{{- end }}
{{- end }}

{{/*
The operator's API permissions: exactly operator/kubetune/operator/rbac.py's PERMISSIONS,
one rule per entry (tests/helm/test_rbac.py fails when the two differ). Namespaced
resources go to a Role per watched namespace, or to the ClusterRole when all namespaces
are watched; cluster-scoped ones only to the ClusterRole.
*/}}
{{- define "kubetune.namespacedRules" -}}
# The custom resources: watched, annotated by kopf, EvalJobs created from FinetuneJobs.
- apiGroups: ["kubetune.io"]
  resources: ["finetunejobs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["kubetune.io"]
  resources: ["finetunejobs/status"]
  verbs: ["get", "patch"]
- apiGroups: ["kubetune.io"]
  resources: ["evaljobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["kubetune.io"]
  resources: ["evaljobs/status"]
  verbs: ["get", "patch"]
# Children carry blockOwnerDeletion on their FinetuneJob/EvalJob: with the
# OwnerReferencesPermissionEnforcement admission plugin (OpenShift's default) that needs
# `update` on the owner's finalizers.
- apiGroups: ["kubetune.io"]
  resources: ["finetunejobs/finalizers"]
  verbs: ["update"]
- apiGroups: ["kubetune.io"]
  resources: ["evaljobs/finalizers"]
  verbs: ["update"]
# Runtime templates in the job's namespace: only read.
- apiGroups: ["kubetune.io"]
  resources: ["finetuneruntimes"]
  verbs: ["get", "list", "watch"]
# Children: trainer config, the training Job, a headless Service for multi-node training.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Pods are only read: phase, exit codes, termination messages, scheduling failures.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# Kueue (when installed): a user's suspend of a queued job deactivates its Workload.
- apiGroups: ["kueue.x-k8s.io"]
  resources: ["workloads"]
  verbs: ["list", "patch"]
# Kubernetes Events for each transition.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# kopf peering in watched namespaces (active/standby replicas).
- apiGroups: ["kopf.dev"]
  resources: ["kopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- if .Values.serving.create }}
# output.serving.create: the KServe object of a job whose evaluation passed.
- apiGroups: ["serving.kserve.io"]
  resources: ["inferenceservices", "llminferenceservices"]
  verbs: ["get", "create"]
{{- end }}
{{- end }}

{{- define "kubetune.clusterScopedRules" -}}
{{ include "kubetune.clusterRuntimeRules" . }}
# kopf peering cluster-wide (active/standby replicas).
- apiGroups: ["kopf.dev"]
  resources: ["clusterkopfpeerings"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}

{{/* Cluster-wide runtime templates: only read; granted in namespaced mode too (a ClusterRole
of its own), since a ClusterFinetuneRuntime lives in no namespace. */}}
{{- define "kubetune.clusterRuntimeRules" -}}
- apiGroups: ["kubetune.io"]
  resources: ["clusterfinetuneruntimes"]
  verbs: ["get", "list", "watch"]
{{- end }}
