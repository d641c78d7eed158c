package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

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
		d, sum, err := build(bin, out, "linux", "arm64", "flagpole-apiserver:test", "v0.1.0", created)
		if err != nil {
			t.Fatal(err)
		}
		digests, sums, outs = append(digests, d.String()), append(sums, sum), append(outs, out)
	}
	if digests[0] != digests[1] || sums[0] != sums[1] {
		t.Fatalf("two builds differ: %v %v", digests, sums)
	}

	idx, err := layout.ImageIndexFromPath(filepath.Join(outs[0], "oci"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations["io.containerd.image.name"] != "docker.io/library/flagpole-apiserver:test" {
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
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/flagpole-apiserver" ||
		cf.OS != "linux" || cf.Architecture != "arm64" || !cf.Created.Time.Equal(created) {
		t.Errorf("config: %+v", cf)
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
	var files []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, h.Name)
		if h.Uid != 65532 || h.Gid != 65532 || h.Mode != 0o755 || !h.ModTime.Equal(created) {
			t.Errorf("%s: uid %d gid %d mode %o mtime %s", h.Name, h.Uid, h.Gid, h.Mode, h.ModTime)
		}
	}
	if len(files) != 1 || files[0] != "flagpole-apiserver" {
		t.Errorf("layer holds %v, want only flagpole-apiserver (no shell)", files)
	}
}
