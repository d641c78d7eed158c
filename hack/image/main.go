// Command image writes an OCI image from a static binary, without a container
// daemon: an empty base, one layer holding the binary (by default at
// /flagpole-apiserver; -path puts it elsewhere), owned by 65532:65532, no
// shell, nothing else; config User 65532:65532 and Entrypoint the binary. The
// output is an OCI image layout directory and the same layout as a tar
// archive. Every time stamp is fixed (-epoch, SOURCE_DATE_EPOCH by default,
// else 0), every file is written in a fixed order, so the same binary gives
// the same digests.
//
// hack/build-image.sh builds Flagpole's image with it; hack/node.sh the real
// node's pause, etcd, CoreDNS and test application images.
package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const nonRoot = 65532 // the "nonroot" user of distroless images

// defaultPath is where Flagpole's image holds its binary.
const defaultPath = "flagpole-apiserver"

// spec says where the binary goes in the image and what the image is called.
type spec struct {
	// path of the binary inside the image, without the leading slash.
	path    string
	name    string // reference recorded in the layout's index
	version string // org.opencontainers.image.version, if set
	goos    string
	goarch  string
}

// archiveName is the tar archive's file name: the binary's, plus .oci.tar.
func (s spec) archiveName() string { return filepath.Base(s.path) + ".oci.tar" }

func main() {
	var (
		binary  = flag.String("binary", "", "static binary to put in the image (required)")
		path    = flag.String("path", defaultPath, "path of the binary inside the image (its entrypoint); below /, the image's PATH is its directory")
		outDir  = flag.String("out", "_output/image", "output directory: <out>/oci (layout) and <out>/<base name of -path>.oci.tar")
		goos    = flag.String("os", "linux", "image OS")
		goarch  = flag.String("arch", "amd64", "image architecture")
		name    = flag.String("name", "flagpole-apiserver:dev", "image reference recorded in the layout's index (io.containerd.image.name; its tag as org.opencontainers.image.ref.name)")
		version = flag.String("version", "", "org.opencontainers.image.version label")
		epoch   = flag.Int64("epoch", defaultEpoch(), "creation time and every file's mtime, in Unix seconds (default SOURCE_DATE_EPOCH, else 0)")
	)
	flag.Parse()
	if *binary == "" {
		fmt.Fprintln(os.Stderr, "image: -binary is required")
		os.Exit(2)
	}
	s := spec{path: strings.TrimPrefix(*path, "/"), name: *name, version: *version, goos: *goos, goarch: *goarch}
	digest, tarDigest, err := build(*binary, *outDir, s, time.Unix(*epoch, 0).UTC())
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("image %s\n", *name)
	fmt.Printf("digest %s\n", digest)
	fmt.Printf("layout %s\n", filepath.Join(*outDir, "oci"))
	fmt.Printf("archive %s sha256:%s\n", filepath.Join(*outDir, s.archiveName()), tarDigest)
}

func defaultEpoch() int64 {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	return 0
}

func build(binary, outDir string, s spec, created time.Time) (v1.Hash, string, error) {
	if s.path == "" || strings.HasSuffix(s.path, "/") {
		return v1.Hash{}, "", fmt.Errorf("-path %q: want a file path inside the image", s.path)
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return v1.Hash{}, "", err
	}
	layerTar, err := layerTar(s.path, bin, created)
	if err != nil {
		return v1.Hash{}, "", err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return v1.Hash{}, "", err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: fmt.Sprintf("hack/image: COPY %s /%s", filepath.Base(s.path), s.path),
		},
	})
	if err != nil {
		return v1.Hash{}, "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, "", err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = s.goos, s.goarch
	cf.Created = v1.Time{Time: created}
	cf.Config.User = fmt.Sprintf("%d:%d", nonRoot, nonRoot)
	cf.Config.Entrypoint = []string{"/" + s.path}
	cf.Config.Cmd = nil
	cf.Config.WorkingDir = "/"
	// A binary outside / is meant to be found on PATH (the etcd image's
	// command is plain "etcd").
	if dir := filepath.Dir(s.path); dir != "." {
		cf.Config.Env = []string{"PATH=/" + dir}
	}
	labels := map[string]string{
		"org.opencontainers.image.title":  filepath.Base(s.path),
		"org.opencontainers.image.source": "https://github.com/flagpole-dev/flagpole",
	}
	if s.version != "" {
		labels["org.opencontainers.image.version"] = s.version
	}
	cf.Config.Labels = labels
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return v1.Hash{}, "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, "", err
	}

	layoutDir := filepath.Join(outDir, "oci")
	if err := os.RemoveAll(layoutDir); err != nil {
		return v1.Hash{}, "", err
	}
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return v1.Hash{}, "", err
	}
	// containerd (kind load image-archive, ctr import) names the image by
	// io.containerd.image.name, which must be fully qualified to match what
	// the kubelet asks for.
	annotations := map[string]string{"io.containerd.image.name": qualified(s.name)}
	if tag := tagOf(s.name); tag != "" {
		annotations["org.opencontainers.image.ref.name"] = tag
	}
	if err := p.AppendImage(img,
		layout.WithAnnotations(annotations),
		layout.WithPlatform(v1.Platform{OS: s.goos, Architecture: s.goarch}),
	); err != nil {
		return v1.Hash{}, "", err
	}
	tarPath := filepath.Join(outDir, s.archiveName())
	sum, err := tarDir(layoutDir, tarPath, created)
	if err != nil {
		return v1.Hash{}, "", err
	}
	return digest, sum, nil
}

// qualified spells a reference as the kubelet resolves it: flagpole-apiserver:v1
// is docker.io/library/flagpole-apiserver:v1.
func qualified(ref string) string {
	first, rest, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return ref
	}
	if !found {
		return "docker.io/library/" + ref
	}
	return "docker.io/" + first + "/" + rest
}

// tagOf returns the tag of a reference such as registry/repo:tag, or "".
func tagOf(ref string) string {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case ':':
			return ref[i+1:]
		case '/', '@':
			return ""
		}
	}
	return ""
}

// layerTar is the one layer: the binary at path, 0755, owned by the non-root
// user (its parent directories, if any, root's and 0755, as unpacking would
// create them).
func layerTar(path string, bin []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	parts := strings.Split(path, "/")
	for i := 1; i < len(parts); i++ {
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeDir,
			Name:     strings.Join(parts[:i], "/") + "/",
			Mode:     0o755,
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     path,
		Mode:     0o755,
		Uid:      nonRoot,
		Gid:      nonRoot,
		Size:     int64(len(bin)),
		ModTime:  mtime,
		Format:   tar.FormatPAX,
	}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarDir archives dir in lexical order with fixed owners, modes and mtimes,
// and returns the archive's sha256.
func tarDir(dir, out string, mtime time.Time) (string, error) {
	var paths []string
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			paths = append(paths, path)
		}
		return nil
	}); err != nil {
		return "", err
	}
	sort.Strings(paths)
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	for _, path := range paths {
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return "", err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return "", err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case info.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
		case info.Mode().IsRegular():
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, info.Size()
		default:
			return "", fmt.Errorf("%s: not a regular file or directory", path)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if hdr.Typeflag == tar.TypeReg {
			src, err := os.Open(path)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
