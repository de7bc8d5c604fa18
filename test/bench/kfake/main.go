// Command kfake runs franz-go's in-memory Kafka-compatible broker (kfake) in
// its own process on fixed 127.0.0.1 ports, for scripts/bench.sh: the
// benchmark's contenders then share a broker that none of them hosts. It
// prints "ready <addrs>" once listening and stops on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 39092, "first port; one broker listens on it (127.0.0.1)")
	flag.Parse()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(*port),
		kfake.DefaultNumPartitions(6),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
	fmt.Println("ready", strings.Join(c.ListenAddrs(), ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	c.Close()
}
