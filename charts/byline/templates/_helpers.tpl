{{/* Labels every object of the chart carries. */}}
{{- define "byline.labels" -}}
app.kubernetes.io/part-of: byline
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* The byline image (operator, collector and, unless overridden, the injected sidecar). */}}
{{- define "byline.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The collector's base URL, as the injected sidecars reach it. */}}
{{- define "byline.collectorUrl" -}}
http://byline-collector.{{ .Release.Namespace }}.svc:{{ .Values.collector.port }}
{{- end }}
