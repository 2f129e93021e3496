// Package ingestpb holds the generated protobuf and gRPC code of the wire
// protocol between Foresight agents and the leader (ingest.proto).
//
// The generated files are committed so that building needs no protoc. To
// regenerate after editing ingest.proto, install protoc (Debian:
// protobuf-compiler), protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.5.1,
// then run `go generate ./telemetry/wire/ingestpb/`.
package ingestpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative ingest.proto
