package memlimit

import (
	"testing"
	"testing/fstest"
)

func TestFromCgroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  int64
		file  string
	}{
		{"cgroup v2 with a limit", fstest.MapFS{
			"proc/self/cgroup":                           {Data: []byte("0::/kubepods/pod1/ctr\n")},
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": {Data: []byte("536870912\n")},
		}, 512 << 20, "/sys/fs/cgroup/kubepods/pod1/ctr/memory.max"},
		{"cgroup v2 unlimited", fstest.MapFS{
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
		}, 0, "/sys/fs/cgroup/memory.max"},
		{"cgroup v1 with a limit, seen from inside the container", fstest.MapFS{
			"proc/self/cgroup": {Data: []byte("4:memory:/kubepods/burstable/pod1/abc\n3:cpu,cpuacct:/kubepods\n")},
			// A container's own cgroup is mounted at the hierarchy's root.
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("268435456\n")},
		}, 256 << 20, "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{"cgroup v1 unlimited (this machine)", fstest.MapFS{
			"proc/self/cgroup": {Data: []byte("4:memory:/process_api/d0\n0::/\n")},
			"sys/fs/cgroup/memory/process_api/d0/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
		}, 0, "/sys/fs/cgroup/memory/process_api/d0/memory.limit_in_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, file, err := FromCgroup(tc.files)
			if err != nil || got != tc.want || file != tc.file {
				t.Errorf("FromCgroup = %d %s %v, want %d %s", got, file, err, tc.want, tc.file)
			}
		})
	}
	if _, _, err := FromCgroup(fstest.MapFS{"proc/self/cgroup": {Data: []byte("0::/x\n")}}); err == nil {
		t.Error("no limit file: no error")
	}
	if _, _, err := FromCgroup(fstest.MapFS{"proc/self/cgroup": {Data: []byte("0::/\n")}, "sys/fs/cgroup/memory.max": {Data: []byte("lots")}}); err == nil {
		t.Error("an unreadable limit: no error")
	}
}
