// The interop functions of tests/interop/interop_functions.py on the Go SDK: the same logic,
// branch for branch, so that the same batches get the same effects.
package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
)

var (
	commandType  = statefun.MakeJsonType(statefun.TypeNameFrom("interop/Command"))
	anyJSONType  = statefun.MakeJsonType(statefun.TypeNameFrom("interop/Json"))
	countSpec    = statefun.ValueSpec{Name: "count", ValueType: statefun.Int32Type}
	lastNameSpec = statefun.ValueSpec{
		Name: "last_name", ValueType: statefun.StringType,
		Expiration: statefun.ExpireAfterWrite(5 * time.Second),
	}
	historySpec = statefun.ValueSpec{
		Name: "history", ValueType: statefun.MakeJsonType(statefun.TypeNameFrom("interop/History")),
		Expiration: statefun.ExpireAfterCall(time.Hour),
	}
	totalSpec    = statefun.ValueSpec{Name: "total", ValueType: statefun.Int64Type}
	allTypeSpecs = []statefun.ValueSpec{
		{Name: "a_bool", ValueType: statefun.BoolType},
		{Name: "an_int", ValueType: statefun.Int32Type},
		{Name: "a_long", ValueType: statefun.Int64Type},
		{Name: "a_float", ValueType: statefun.Float32Type},
		{Name: "a_double", ValueType: statefun.Float64Type},
		{Name: "a_string", ValueType: statefun.StringType},
		{Name: "a_json", ValueType: anyJSONType},
	}
)

// A command of interop/Command: the egress kinds' fields, and all-types' set/delete/read.
type command struct {
	Egress          string                     `json:"egress"`
	Topic           string                     `json:"topic"`
	Value           json.RawMessage            `json:"value"`
	Key             *string                    `json:"key"`
	AsBytes         bool                       `json:"as_bytes"`
	Stream          string                     `json:"stream"`
	PartitionKey    string                     `json:"partition_key"`
	ExplicitHashKey *string                    `json:"explicit_hash_key"`
	Set             map[string]json.RawMessage `json:"set"`
	Delete          []string                   `json:"delete"`
	Read            []string                   `json:"read"`
}

func interopSpecs() []statefun.StatefulFunctionSpec {
	return []statefun.StatefulFunctionSpec{
		{
			FunctionType: statefun.TypeNameFrom("interop/counter"),
			States:       []statefun.ValueSpec{countSpec, historySpec, lastNameSpec},
			Function:     statefun.StatefulFunctionPointer(counter),
		},
		{
			FunctionType: statefun.TypeNameFrom("interop/all-types"),
			States:       allTypeSpecs,
			Function:     statefun.StatefulFunctionPointer(allTypes),
		},
		{
			FunctionType: statefun.TypeNameFrom("interop/async"),
			States:       []statefun.ValueSpec{totalSpec},
			Function:     statefun.StatefulFunctionPointer(asyncTotal),
		},
	}
}

func address(typename, id string) statefun.Address {
	return statefun.Address{FunctionType: statefun.TypeNameFrom(typename), Id: id}
}

func counter(ctx statefun.Context, message statefun.Message) error {
	switch {
	case message.IsString():
		name := message.AsString()
		var count int32
		ctx.Storage().Get(countSpec, &count)
		count++
		ctx.Storage().Set(countSpec, count)
		ctx.Storage().Set(lastNameSpec, name)
		var history []interface{}
		ctx.Storage().Get(historySpec, &history)
		ctx.Storage().Set(historySpec, append(history, name))
		ctx.Send(statefun.MessageBuilder{
			Target: address("interop/echo", ctx.Self().Id),
			Value:  fmt.Sprintf("hello %s #%d", name, count),
		})
		if caller := ctx.Caller(); caller != nil {
			ctx.Send(statefun.MessageBuilder{Target: *caller, Value: int64(count)})
		}
	case message.IsInt32():
		return counterDelays(ctx, int64(message.AsInt32()))
	case message.Is(commandType):
		var cmd command
		if err := message.As(commandType, &cmd); err != nil {
			return err
		}
		return sendEgress(ctx, cmd)
	}
	return nil
}

func counterDelays(ctx statefun.Context, value int64) error {
	if value == 0 {
		ctx.Storage().Remove(countSpec)
		ctx.Storage().Remove(historySpec)
		return nil
	}
	magnitude := value
	if value < 0 {
		magnitude = -value
	}
	token, err := statefun.NewCancellationToken(fmt.Sprintf("token-%d", magnitude))
	if err != nil {
		return err
	}
	if value < 0 {
		ctx.CancelDelayedMessage(token)
		return nil
	}
	self := ctx.Self()
	ctx.SendAfterWithCancellationToken(time.Duration(value)*time.Millisecond, token,
		statefun.MessageBuilder{Target: self, Value: int32(0)})
	ctx.SendAfter(time.Duration(value)*time.Second,
		statefun.MessageBuilder{Target: address("interop/echo", "later"), Value: true})
	return nil
}

func sendEgress(ctx statefun.Context, cmd command) error {
	switch cmd.Egress {
	case "kafka", "kinesis":
		var text string
		if err := json.Unmarshal(cmd.Value, &text); err != nil {
			return err
		}
		var value interface{} = text
		if cmd.AsBytes {
			value = []byte(text)
		}
		if cmd.Egress == "kafka" {
			key := ""
			if cmd.Key != nil {
				key = *cmd.Key
			}
			ctx.SendEgress(statefun.KafkaEgressBuilder{
				Target: statefun.TypeNameFrom("interop/kafka"), Topic: cmd.Topic, Key: key,
				Value: value,
			})
			return nil
		}
		hashKey := ""
		if cmd.ExplicitHashKey != nil {
			hashKey = *cmd.ExplicitHashKey
		}
		ctx.SendEgress(statefun.KinesisEgressBuilder{
			Target: statefun.TypeNameFrom("interop/kinesis"), Stream: cmd.Stream, Value: value,
			PartitionKey: cmd.PartitionKey, ExplicitHashKey: hashKey,
		})
	default:
		var value interface{}
		if err := json.Unmarshal(cmd.Value, &value); err != nil {
			return err
		}
		ctx.SendEgress(statefun.GenericEgressBuilder{
			Target: statefun.TypeNameFrom("interop/generic"), Value: value, ValueType: anyJSONType,
		})
	}
	return nil
}

// receiver is a pointer to a Go value of the spec's type, for Get and json.Unmarshal.
func receiver(spec statefun.ValueSpec) interface{} {
	switch spec.ValueType {
	case statefun.BoolType:
		return new(bool)
	case statefun.Int32Type:
		return new(int32)
	case statefun.Int64Type:
		return new(int64)
	case statefun.Float32Type:
		return new(float32)
	case statefun.Float64Type:
		return new(float64)
	case statefun.StringType:
		return new(string)
	}
	return new(interface{})
}

func specNamed(name string) statefun.ValueSpec {
	for _, spec := range allTypeSpecs {
		if spec.Name == name {
			return spec
		}
	}
	panic(fmt.Errorf("no state %s", name))
}

func allTypes(ctx statefun.Context, message statefun.Message) error {
	var cmd command
	if err := message.As(commandType, &cmd); err != nil {
		return err
	}
	for name, raw := range cmd.Set {
		spec := specNamed(name)
		value := receiver(spec)
		if spec.ValueType == statefun.Float32Type {
			// As Python does: the JSON number is a double, narrowed to float32 when stored.
			var wide float64
			if err := json.Unmarshal(raw, &wide); err != nil {
				return err
			}
			value = float32(wide)
		} else if err := json.Unmarshal(raw, value); err != nil {
			return err
		}
		ctx.Storage().Set(spec, value)
	}
	for _, name := range cmd.Delete {
		ctx.Storage().Remove(specNamed(name))
	}
	seen := statefun.TypeNameFrom("interop/seen")
	for _, name := range cmd.Read {
		spec := specNamed(name)
		value := receiver(spec)
		if ctx.Storage().Get(spec, value) {
			ctx.SendEgress(statefun.GenericEgressBuilder{
				Target: seen, Value: value, ValueType: spec.ValueType,
			})
		} else {
			ctx.SendEgress(statefun.GenericEgressBuilder{
				Target: seen, Value: name + " is empty", ValueType: statefun.StringType,
			})
		}
	}
	return nil
}

func asyncTotal(ctx statefun.Context, message statefun.Message) error {
	var total int64
	ctx.Storage().Get(totalSpec, &total)
	total += message.AsInt64()
	ctx.Storage().Set(totalSpec, total)
	ctx.Send(statefun.MessageBuilder{Target: address("interop/echo", "async"), Value: total})
	return nil
}
