{{/* Labels every object carries, as the kustomize base's labels: field. */}}
{{- define "flagpole.partOf" -}}
app.kubernetes.io/part-of: flagpole
{{- end -}}

{{/* The Flagpole image reference. */}}
{{- define "flagpole.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* etcd-0=http://etcd-0.etcd.<ns>.svc:2380,... for every member. */}}
{{- define "flagpole.etcdInitialCluster" -}}
{{- $ns := .Values.namespace -}}
{{- $members := list -}}
{{- range $i := until (int .Values.etcd.members) -}}
{{- $members = append $members (printf "etcd-%d=http://etcd-%d.etcd.%s.svc:2380" $i $i $ns) -}}
{{- end -}}
{{ join "," $members }}
{{- end -}}

{{/* Flagpole's etcd servers: the client Service for one member, every member
     otherwise (so that its client fails over by itself). */}}
{{- define "flagpole.etcdServers" -}}
{{- $ns := .Values.namespace -}}
{{- if eq (int .Values.etcd.members) 1 -}}
http://etcd-client.{{ $ns }}.svc:2379
{{- else -}}
{{- $members := list -}}
{{- range $i := until (int .Values.etcd.members) -}}
{{- $members = append $members (printf "http://etcd-%d.etcd.%s.svc:2379" $i $ns) -}}
{{- end -}}
{{ join "," $members }}
{{- end -}}
{{- end -}}
