// The greeter (../README.md) on the Go SDK.
package main

import (
	"fmt"
	"time"

	"github.com/apache/flink-statefun/statefun-sdk-go/v3/pkg/statefun"
)

var (
	userType     = statefun.TypeNameFrom("greeter/user")
	greeterType  = statefun.TypeNameFrom("greeter/greeter")
	visitType    = statefun.MakeJsonType(statefun.TypeNameFrom("greeter/Visit"))
	egressRecord = statefun.MakeJsonType(statefun.TypeNameFrom("io.statefun.playground/EgressRecord"))
	playground   = statefun.TypeNameFrom("io.statefun.playground/egress")
	visitsSpec   = statefun.ValueSpec{
		Name:       "visits",
		ValueType:  statefun.Int32Type,
		Expiration: statefun.ExpireAfterCall(24 * time.Hour),
	}
)

type visit struct {
	Name   string `json:"name"`
	Visits int32  `json:"visits"`
}

func greeterSpecs() []statefun.StatefulFunctionSpec {
	return []statefun.StatefulFunctionSpec{
		{
			FunctionType: userType,
			States:       []statefun.ValueSpec{visitsSpec},
			Function:     statefun.StatefulFunctionPointer(user),
		},
		{FunctionType: greeterType, Function: statefun.StatefulFunctionPointer(greeter)},
	}
}

func user(ctx statefun.Context, message statefun.Message) error {
	name := message.AsString()
	id := ctx.Self().Id
	var visits int32
	ctx.Storage().Get(visitsSpec, &visits)
	visits++
	ctx.Storage().Set(visitsSpec, visits)
	toGreeter := statefun.Address{FunctionType: greeterType, Id: id}
	ctx.Send(statefun.MessageBuilder{
		Target: toGreeter, Value: visit{Name: name, Visits: visits}, ValueType: visitType,
	})
	token, err := statefun.NewCancellationToken("forget-" + id)
	if err != nil {
		return err
	}
	switch visits {
	case 1:
		ctx.SendAfterWithCancellationToken(time.Hour, token, statefun.MessageBuilder{
			Target: toGreeter, Value: "Forgotten " + name,
		})
	case 2:
		ctx.CancelDelayedMessage(token)
		ctx.SendAfter(100*time.Millisecond, statefun.MessageBuilder{
			Target: toGreeter, Value: "Welcome back " + name,
		})
	}
	return nil
}

func greeter(ctx statefun.Context, message statefun.Message) error {
	var payload string
	if message.IsString() {
		payload = message.AsString()
	} else {
		var v visit
		if err := message.As(visitType, &v); err != nil {
			return err
		}
		payload = fmt.Sprintf("Hello %s, visit %d", v.Name, v.Visits)
	}
	ctx.SendEgress(statefun.GenericEgressBuilder{
		Target:    playground,
		Value:     map[string]string{"topic": "greetings", "payload": payload},
		ValueType: egressRecord,
	})
	return nil
}
