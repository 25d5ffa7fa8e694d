{{/*
Names, labels and the values derived from several settings. Names are cut to 63 characters, the
limit of a DNS label, which some Kubernetes name fields are held to.
*/}}

{{- define "wiro-relay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wiro-relay.fullname" -}}
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

{{- define "wiro-relay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wiro-relay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wiro-relay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: relay
{{- end }}

{{- define "wiro-relay.labels" -}}
helm.sh/chart: {{ include "wiro-relay.chart" . }}
{{ include "wiro-relay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wiro-relay
{{- end }}

{{- define "wiro-relay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wiro-relay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "wiro-relay.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
RELAY_PUBLIC_URL: the explicit value, else the Ingress host, else the in-cluster Service URL.
*/}}
{{- define "wiro-relay.publicUrl" -}}
{{- if .Values.publicUrl }}
{{- .Values.publicUrl | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.host }}
{{- printf "%s://%s" (ternary "https" "http" (gt (len .Values.ingress.tls) 0)) .Values.ingress.host }}
{{- else }}
{{- printf "http://%s.%s.svc.%s:%v" (include "wiro-relay.fullname" .) .Release.Namespace .Values.clusterDomain .Values.service.port }}
{{- end }}
{{- end }}

{{- define "wiro-relay.secretName" -}}
{{- default (include "wiro-relay.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "wiro-relay.secretMountPath" -}}
/run/secrets/wiro-relay
{{- end }}

{{/*
The secrets the relay will read, as a YAML list of {variable, key, file}: from the existing Secret,
every key named in existingSecretKeys; from the chart's own Secret, every inline value that is set.
Each becomes a file under the secret mount and a NAME_FILE variable pointing at it, so no value
ever appears in the container's environment.
*/}}
{{- define "wiro-relay.secretEntries" -}}
{{- $s := .Values.secrets }}
{{- $entries := list
      (dict "variable" "WIRO_API_KEY" "field" "wiroApiKey" "file" "wiro-api-key")
      (dict "variable" "WIRO_API_SECRET" "field" "wiroApiSecret" "file" "wiro-api-secret")
      (dict "variable" "RELAY_API_TOKENS" "field" "relayApiTokens" "file" "relay-api-tokens")
      (dict "variable" "RELAY_SECRET" "field" "relaySecret" "file" "relay-secret") }}
{{- $out := list }}
{{- range $entries }}
{{- if $s.existingSecret }}
{{- $key := get $s.existingSecretKeys .field }}
{{- if $key }}
{{- $out = append $out (dict "variable" .variable "key" $key "file" .file) }}
{{- end }}
{{- else if get $s .field }}
{{- $out = append $out (dict "variable" .variable "key" .file "file" .file) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Whether the relay will have bearer tokens: they decide if it may listen beyond loopback.
*/}}
{{- define "wiro-relay.hasTokens" -}}
{{- if .Values.secrets.existingSecret }}
{{- if .Values.secrets.existingSecretKeys.relayApiTokens }}true{{ end }}
{{- else if .Values.secrets.relayApiTokens }}true{{ end }}
{{- end }}

{{- define "wiro-relay.hasApiKey" -}}
{{- if .Values.secrets.existingSecret }}
{{- if .Values.secrets.existingSecretKeys.wiroApiKey }}true{{ end }}
{{- else if .Values.secrets.wiroApiKey }}true{{ end }}
{{- end }}

{{/*
Refuse values that contradict each other, rather than silently ignoring half of them.
*/}}
{{- define "wiro-relay.validate" -}}
{{- $s := .Values.secrets }}
{{- if and $s.existingSecret (or $s.wiroApiKey $s.wiroApiSecret $s.relayApiTokens $s.relaySecret) }}
{{- fail "secrets.existingSecret is set: leave the inline secrets.* values empty, the chart would not use them" }}
{{- end }}
{{- if and .Values.persistence.existingClaim (not .Values.persistence.enabled) }}
{{- fail "persistence.existingClaim is set but persistence.enabled is false" }}
{{- end }}
{{- end }}
