module github.com/switchboard-go/switchboard/bench

go 1.26.0

require github.com/switchboard-go/switchboard v0.0.0

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/maypok86/otter/v2 v2.4.0
)

replace github.com/switchboard-go/switchboard => ../
