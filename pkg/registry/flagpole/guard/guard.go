// Package guard holds what every Flagpole store shares to answer hostile
// input and a failing datastore with a 4xx or a 503 where kube-apiserver
// itself answers 500, hangs, or panics. One concern per file:
//
//   - store.go: Store, the wrapper around every genericregistry.Store that
//     applies the rest;
//   - resourceversion.go: a resourceVersion the storage cannot parse is a 400;
//   - patch.go: a patch whose application panics or fails is a 400;
//   - size.go: an object larger than etcd accepts is a 422;
//   - unavailable.go: etcd without a leader or not answering is a 503 with
//     Retry-After, and a create whose answer was lost is read back;
//   - insufficientstorage.go: a write the datastore has no room for is a 507
//     (RefuseWrites: the stores of a getter refuse writes while a check
//     says so, such as embedded etcd's disk space).
package guard
