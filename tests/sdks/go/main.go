// The SDK test programs on the official Go SDK, github.com/apache/flink-statefun/statefun-sdk-go/v3
// v3.3.0, served with net/http (see ../README.md for what each serves).
//
//	sdk-server [PORT]
//
// PORT defaults to 0 (any free port). Prints "PORT <n>" on stdout once it listens on 127.0.0.1,
// then serves until killed: POST /statefun runs the functions (the SDK's own http.Handler), POST
// /vectors encodes and decodes typed values with the SDK's types (vectors.go).
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
)

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	functions := statefun.StatefulFunctionsBuilder()
	for _, spec := range append(greeterSpecs(), interopSpecs()...) {
		if err := functions.WithSpec(spec); err != nil {
			log.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/statefun", functions.AsHandler())
	mux.HandleFunc("/vectors", serveVectors)
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("PORT %d\n", listener.Addr().(*net.TCPAddr).Port)
	log.Fatal(http.Serve(listener, mux))
}
