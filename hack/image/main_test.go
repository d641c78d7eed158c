package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// The same binary gives the same image digest and the same archive, byte
// for byte; the image is what the Deployment expects.
func TestBuildReproducibleAndNonRoot(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "flagpole-apiserver")
	if err := os.WriteFile(bin, []byte("\x7fELF not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	created := time.Unix(1700000000, 0).UTC()
	var digests, sums []string
	var outs []string
	for i := 0; i < 2; i++ {
		out := t.TempDir()
		d, sum, err := build(bin, out, spec{path: defaultPath, name: "flagpole-apiserver:test", version: "v0.1.0", goos: "linux", goarch: "arm64"}, created)
		if err != nil {
			t.Fatal(err)
		}
		digests, sums, outs = append(digests, d.String()), append(sums, sum), append(outs, out)
	}
	if digests[0] != digests[1] || sums[0] != sums[1] {
		t.Fatalf("two builds differ: %v %v", digests, sums)
	}

	annotations, cf, headers := readImage(t, outs[0])
	if annotations["io.containerd.image.name"] != "docker.io/library/flagpole-apiserver:test" {
		t.Fatalf("index annotations: %v", annotations)
	}
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/flagpole-apiserver" ||
		cf.OS != "linux" || cf.Architecture != "arm64" || !cf.Created.Time.Equal(created) || len(cf.Config.Env) != 0 {
		t.Errorf("config: %+v", cf)
	}
	var files []string
	for _, h := range headers {
		files = append(files, h.Name)
		if h.Uid != 65532 || h.Gid != 65532 || h.Mode != 0o755 || !h.ModTime.Equal(created) {
			t.Errorf("%s: uid %d gid %d mode %o mtime %s", h.Name, h.Uid, h.Gid, h.Mode, h.ModTime)
		}
	}
	if len(files) != 1 || files[0] != "flagpole-apiserver" {
		t.Errorf("layer holds %v, want only flagpole-apiserver (no shell)", files)
	}
}

// A binary given a path below / (the real node's etcd image, whose command is
// plain "etcd") is found on the image's PATH, and its directories are in the
// layer; the archive is named after it.
func TestBuildBinaryOnPath(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "etcd")
	if err := os.WriteFile(bin, []byte("\x7fELF not really etcd"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	s := spec{path: "usr/local/bin/etcd", name: "registry.k8s.io/etcd:3.7.0-0", goos: "linux", goarch: "amd64"}
	if _, _, err := build(bin, out, s, time.Unix(0, 0).UTC()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "etcd.oci.tar")); err != nil {
		t.Fatalf("archive: %v", err)
	}
	annotations, cf, headers := readImage(t, out)
	if got := annotations["io.containerd.image.name"]; got != "registry.k8s.io/etcd:3.7.0-0" {
		t.Errorf("image name %q", got)
	}
	if len(cf.Config.Env) != 1 || cf.Config.Env[0] != "PATH=/usr/local/bin" ||
		cf.Config.Entrypoint[0] != "/usr/local/bin/etcd" {
		t.Errorf("config: env %v entrypoint %v", cf.Config.Env, cf.Config.Entrypoint)
	}
	var names []string
	for _, h := range headers {
		names = append(names, h.Name)
	}
	want := []string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/etcd"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("layer holds %v, want %v", names, want)
	}
}

// readImage opens the one image of the layout in out and returns its config
// and its layer's tar headers.
func readImage(t *testing.T, out string) (map[string]string, *v1.ConfigFile, []*tar.Header) {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("index: %+v", m.Manifests)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var headers []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m.Manifests[0].Annotations, cf, headers
		}
		if err != nil {
			t.Fatal(err)
		}
		headers = append(headers, h)
	}
}
