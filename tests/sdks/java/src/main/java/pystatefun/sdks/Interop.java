package pystatefun.sdks;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.statefun.sdk.java.Address;
import org.apache.flink.statefun.sdk.java.Context;
import org.apache.flink.statefun.sdk.java.StatefulFunctionSpec;
import org.apache.flink.statefun.sdk.java.TypeName;
import org.apache.flink.statefun.sdk.java.ValueSpec;
import org.apache.flink.statefun.sdk.java.io.KafkaEgressMessage;
import org.apache.flink.statefun.sdk.java.io.KinesisEgressMessage;
import org.apache.flink.statefun.sdk.java.message.EgressMessage;
import org.apache.flink.statefun.sdk.java.message.EgressMessageBuilder;
import org.apache.flink.statefun.sdk.java.message.Message;
import org.apache.flink.statefun.sdk.java.message.MessageBuilder;
import org.apache.flink.statefun.sdk.java.types.Type;
import org.apache.flink.statefun.sdk.java.types.Types;

/**
 * The interop functions of tests/interop/interop_functions.py on the Java SDK: the same logic,
 * branch for branch, so that the same batches get the same effects.
 */
final class Interop {
  static final Type<JsonNode> COMMAND = Json.type("interop/Command");
  static final Type<JsonNode> ANY_JSON = Json.type("interop/Json");
  static final TypeName ECHO = TypeName.typeNameFromString("interop/echo");
  static final TypeName SEEN = TypeName.typeNameFromString("interop/seen");
  static final ValueSpec<Integer> COUNT = ValueSpec.named("count").withIntType();
  static final ValueSpec<JsonNode> HISTORY =
      ValueSpec.named("history")
          .thatExpiresAfterCall(Duration.ofHours(1))
          .withCustomType(Json.type("interop/History"));
  static final ValueSpec<String> LAST_NAME =
      ValueSpec.named("last_name").thatExpireAfterWrite(Duration.ofSeconds(5)).withUtf8StringType();
  static final ValueSpec<Long> TOTAL = ValueSpec.named("total").withLongType();
  static final ValueSpec<Boolean> A_BOOL = ValueSpec.named("a_bool").withBooleanType();
  static final ValueSpec<Integer> AN_INT = ValueSpec.named("an_int").withIntType();
  static final ValueSpec<Long> A_LONG = ValueSpec.named("a_long").withLongType();
  static final ValueSpec<Float> A_FLOAT = ValueSpec.named("a_float").withFloatType();
  static final ValueSpec<Double> A_DOUBLE = ValueSpec.named("a_double").withDoubleType();
  static final ValueSpec<String> A_STRING = ValueSpec.named("a_string").withUtf8StringType();
  static final ValueSpec<JsonNode> A_JSON = ValueSpec.named("a_json").withCustomType(ANY_JSON);
  static final List<ValueSpec<?>> ALL_TYPES =
      List.of(A_BOOL, AN_INT, A_LONG, A_FLOAT, A_DOUBLE, A_STRING, A_JSON);

  private Interop() {}

  static List<StatefulFunctionSpec> specs() {
    return List.of(
        StatefulFunctionSpec.builder(TypeName.typeNameFromString("interop/counter"))
            .withValueSpecs(COUNT, HISTORY, LAST_NAME)
            .withSupplier(() -> Interop::counter)
            .build(),
        StatefulFunctionSpec.builder(TypeName.typeNameFromString("interop/all-types"))
            .withValueSpecs(ALL_TYPES.toArray(new ValueSpec<?>[0]))
            .withSupplier(() -> Interop::allTypes)
            .build(),
        StatefulFunctionSpec.builder(TypeName.typeNameFromString("interop/async"))
            .withValueSpec(TOTAL)
            .withSupplier(() -> Interop::asyncTotal)
            .build());
  }

  static CompletableFuture<Void> counter(Context context, Message message) {
    if (message.isUtf8String()) {
      String name = message.asUtf8String();
      int count = context.storage().get(COUNT).orElse(0) + 1;
      context.storage().set(COUNT, count);
      context.storage().set(LAST_NAME, name);
      JsonNode history = context.storage().get(HISTORY).orElse(Json.MAPPER.createArrayNode());
      context.storage().set(HISTORY, Json.MAPPER.createArrayNode().addAll(
          (com.fasterxml.jackson.databind.node.ArrayNode) history).add(name));
      String hello = "hello " + name + " #" + count;
      context.send(MessageBuilder.forAddress(ECHO, context.self().id()).withValue(hello).build());
      Optional<Address> caller = context.caller();
      if (caller.isPresent()) {
        context.send(MessageBuilder.forAddress(caller.get()).withValue((long) count).build());
      }
    } else if (message.isInt()) {
      delays(context, message.asInt());
    } else if (message.is(COMMAND)) {
      context.send(egress(message.as(COMMAND)));
    }
    return context.done();
  }

  private static void delays(Context context, long value) {
    if (value == 0) {
      context.storage().remove(COUNT);
      context.storage().remove(HISTORY);
    } else if (value > 0) {
      Message zero = MessageBuilder.forAddress(context.self()).withValue(0).build();
      context.sendAfter(Duration.ofMillis(value), "token-" + value, zero);
      Message later = MessageBuilder.forAddress(ECHO, "later").withValue(true).build();
      context.sendAfter(Duration.ofSeconds(value), later);
    } else {
      context.cancelDelayedMessage("token-" + (-value));
    }
  }

  private static EgressMessage egress(JsonNode command) {
    String kind = command.path("egress").asText();
    JsonNode value = command.get("value");
    if (kind.equals("kafka")) {
      KafkaEgressMessage.Builder kafka =
          KafkaEgressMessage.forEgress(TypeName.typeNameFromString("interop/kafka"))
              .withTopic(command.get("topic").asText());
      if (command.hasNonNull("key")) {
        kafka.withUtf8Key(command.get("key").asText());
      }
      return kafka.withUtf8Value(value.asText()).build();
    }
    if (kind.equals("kinesis")) {
      KinesisEgressMessage.Builder kinesis =
          KinesisEgressMessage.forEgress(TypeName.typeNameFromString("interop/kinesis"))
              .withStream(command.get("stream").asText())
              .withUtf8PartitionKey(command.get("partition_key").asText())
              .withUtf8Value(value.asText());
      if (command.hasNonNull("explicit_hash_key")) {
        kinesis.withUtf8ExplicitHashKey(command.get("explicit_hash_key").asText());
      }
      return kinesis.build();
    }
    return EgressMessageBuilder.forEgress(TypeName.typeNameFromString("interop/generic"))
        .withCustomType(ANY_JSON, value)
        .build();
  }

  static CompletableFuture<Void> allTypes(Context context, Message message) {
    JsonNode command = message.as(COMMAND);
    Iterator<Map.Entry<String, JsonNode>> sets = command.path("set").fields();
    while (sets.hasNext()) {
      Map.Entry<String, JsonNode> set = sets.next();
      JsonNode v = set.getValue();
      switch (set.getKey()) {
        case "a_bool": context.storage().set(A_BOOL, v.booleanValue()); break;
        case "an_int": context.storage().set(AN_INT, v.intValue()); break;
        case "a_long": context.storage().set(A_LONG, v.longValue()); break;
        // As Python does: the JSON number is a double, narrowed to float32 when stored.
        case "a_float": context.storage().set(A_FLOAT, (float) v.doubleValue()); break;
        case "a_double": context.storage().set(A_DOUBLE, v.doubleValue()); break;
        case "a_string": context.storage().set(A_STRING, v.textValue()); break;
        case "a_json": context.storage().set(A_JSON, v); break;
        default: throw new IllegalArgumentException("no state " + set.getKey());
      }
    }
    for (JsonNode name : command.path("delete")) {
      context.storage().remove(spec(name.asText()));
    }
    for (JsonNode name : command.path("read")) {
      context.send(seen(context, spec(name.asText())));
    }
    return context.done();
  }

  private static ValueSpec<?> spec(String name) {
    return ALL_TYPES.stream()
        .filter(s -> s.name().equals(name))
        .findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no state " + name));
  }

  private static <T> EgressMessage seen(Context context, ValueSpec<T> spec) {
    Optional<T> stored = context.storage().get(spec);
    EgressMessageBuilder builder = EgressMessageBuilder.forEgress(SEEN);
    if (stored.isPresent()) {
      return builder.withCustomType(spec.type(), stored.get()).build();
    }
    return builder.withCustomType(Types.stringType(), spec.name() + " is empty").build();
  }

  static CompletableFuture<Void> asyncTotal(Context context, Message message) {
    return CompletableFuture.runAsync(
        () -> {
          long total = context.storage().get(TOTAL).orElse(0L) + message.asLong();
          context.storage().set(TOTAL, total);
          context.send(MessageBuilder.forAddress(ECHO, "async").withValue(total).build());
        });
  }
}
