// POST /vectors: a JSON list of requests, answered by a JSON list, each value encoded or
// decoded with the SDK's own types (the protocol is in tests/support/sdk_vectors.py):
//
//	{"op": "encode", "type": "int", "value": "42"} -> {"hex": "082a"} or {"error": "..."}
//	{"op": "decode", "type": "int", "hex": "082a"} -> {"value": "42"} or {"error": "..."}
//
// Values travel canonically: bool as a JSON bool, int and long as decimal strings, float and
// double as the hex of their IEEE 754 bits, string as a JSON string, json as the JSON value.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
)

type vectorRequest struct {
	Op    string          `json:"op"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
	Hex   string          `json:"hex"`
}

var vectorTypes = map[string]statefun.SimpleType{
	"bool": statefun.BoolType, "int": statefun.Int32Type, "long": statefun.Int64Type,
	"float": statefun.Float32Type, "double": statefun.Float64Type,
	"string": statefun.StringType, "json": statefun.MakeJsonType(statefun.TypeNameFrom("interop/Json")),
}

func serveVectors(writer http.ResponseWriter, request *http.Request) {
	var requests []vectorRequest
	if err := json.NewDecoder(request.Body).Decode(&requests); err != nil {
		http.Error(writer, err.Error(), http.StatusBadRequest)
		return
	}
	answers := make([]map[string]interface{}, len(requests))
	for i, r := range requests {
		answers[i] = answerVector(r)
	}
	writer.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(writer).Encode(answers)
}

func answerVector(r vectorRequest) map[string]interface{} {
	tpe, ok := vectorTypes[r.Type]
	if !ok {
		return map[string]interface{}{"error": "no type " + r.Type}
	}
	if r.Op == "encode" {
		value, err := fromCanonical(r.Type, r.Value)
		if err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
		buffer := bytes.Buffer{}
		if err := tpe.Serialize(&buffer, value); err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
		return map[string]interface{}{"hex": hex.EncodeToString(buffer.Bytes())}
	}
	raw, err := hex.DecodeString(r.Hex)
	if err != nil {
		return map[string]interface{}{"error": err.Error()}
	}
	target := receiver(statefun.ValueSpec{ValueType: tpe})
	if err := tpe.Deserialize(bytes.NewReader(raw), target); err != nil {
		return map[string]interface{}{"error": err.Error()}
	}
	return map[string]interface{}{"value": toCanonical(target)}
}

func fromCanonical(tpe string, raw json.RawMessage) (interface{}, error) {
	var text string
	switch tpe {
	case "bool":
		var b bool
		return b, json.Unmarshal(raw, &b)
	case "json":
		var v interface{}
		return v, json.Unmarshal(raw, &v)
	}
	if err := json.Unmarshal(raw, &text); err != nil {
		return nil, err
	}
	switch tpe {
	case "int":
		n, err := strconv.ParseInt(text, 10, 32)
		return int32(n), err
	case "long":
		return strconv.ParseInt(text, 10, 64)
	case "float":
		bits, err := strconv.ParseUint(text, 16, 32)
		return math.Float32frombits(uint32(bits)), err
	case "double":
		bits, err := strconv.ParseUint(text, 16, 64)
		return math.Float64frombits(bits), err
	}
	return text, nil
}

func toCanonical(value interface{}) interface{} {
	switch v := value.(type) {
	case *int32:
		return strconv.FormatInt(int64(*v), 10)
	case *int64:
		return strconv.FormatInt(*v, 10)
	case *float32:
		return fmt.Sprintf("%08x", math.Float32bits(*v))
	case *float64:
		return fmt.Sprintf("%016x", math.Float64bits(*v))
	case *bool:
		return *v
	case *string:
		return *v
	case *interface{}:
		return *v
	}
	return nil
}
