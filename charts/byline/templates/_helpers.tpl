{{/*
Names. Every object's name comes from the release, so the chart installs twice in different
namespaces (cluster-scoped objects included). A release named "byline" keeps the short names the
docs use: byline-operator, byline-collector, byline-trail-reader.
*/}}
{{- define "byline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "byline" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-byline" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{- define "byline.operator.name" -}}{{ include "byline.fullname" . }}-operator{{- end }}
{{- define "byline.collector.name" -}}{{ include "byline.fullname" . }}-collector{{- end }}

{{/* The MutatingWebhookConfigurations (the operator derives the approvals name the same way). */}}
{{- define "byline.webhook.podsName" -}}{{ include "byline.fullname" . }}-pod-injector{{- end }}
{{- define "byline.webhook.approvalsName" -}}
{{- $pods := include "byline.webhook.podsName" . -}}
{{- if eq $pods "byline-pod-injector" }}byline-approvals{{ else }}{{ $pods }}-approvals{{ end -}}
{{- end }}

{{/* Labels every object of the chart carries (Kubernetes' recommended labels). */}}
{{- define "byline.labels" -}}
app.kubernetes.io/name: byline
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: byline
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component (operator, collector) of this release. */}}
{{- define "byline.selectorLabels" -}}
app.kubernetes.io/name: byline
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The byline image (operator, collector and, unless overridden, the injected sidecar). */}}
{{- define "byline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The collector's scheme: HTTPS unless TLS is switched off. */}}
{{- define "byline.collectorUrl" -}}
{{ if include "byline.collectorTls" . }}https{{ else }}http{{ end }}://{{ include "byline.collector.name" . }}.{{ .Release.Namespace }}.svc:{{ .Values.collector.port }}
{{- end }}

{{/* "true" when the collector serves HTTPS (collector.tls.mode is not disabled), else "". */}}
{{- define "byline.collectorTls" -}}
{{- if ne .Values.collector.tls.mode "disabled" }}true{{ end }}
{{- end }}

{{/* The collector's port name, by its scheme (https unless TLS is off): meshes and probes read the protocol from it. */}}
{{- define "byline.collector.portName" -}}
{{ if include "byline.collectorTls" . }}https{{ else }}http{{ end }}
{{- end }}

{{/* The Secret with the collector's tls.crt, tls.key (and ca.crt). */}}
{{- define "byline.collectorTlsSecret" -}}
{{ .Values.collector.tls.secretName | default (printf "%s-tls" (include "byline.collector.name" .)) }}
{{- end }}

{{/* Prometheus scrape annotations for a pod serving /metrics on port. */}}
{{- define "byline.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrapeAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- if .https }}
prometheus.io/scheme: https
{{- end }}
{{- end }}
{{- end }}

{{- define "byline.gateway.name" -}}{{ include "byline.fullname" . }}-gateway{{- end }}

{{/*
The gateway's config: gateway.config as given, with `audit` filled in unless given: the spool on
its emptyDir, shipped to the collector with the gateway's projected service-account token (over
HTTPS, trusting the CA in the collector's TLS Secret, unless collector.tls.mode is disabled).
*/}}
{{- define "byline.gateway.config" -}}
{{- $config := deepCopy .Values.gateway.config }}
{{- if not (hasKey $config "audit") }}
{{- $collector := dict "url" (include "byline.collectorUrl" .) "tokenFile" "/var/run/secrets/byline/token" }}
{{- if include "byline.collectorTls" . }}
{{- $_ := set $collector "caFile" "/etc/byline/collector-ca/ca.crt" }}
{{- end }}
{{- $sink := dict "collector" $collector }}
{{- $_ := set $config "audit" (dict "spoolDir" "/var/lib/byline/spool" "sinks" (list $sink)) }}
{{- end }}
{{- toYaml $config }}
{{- end }}
