// Command etcd is upstream's etcd server: the same entry point as etcd's own
// server/main.go (etcdmain.Main), linked from the pinned go.etcd.io/etcd/server/v3 module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
