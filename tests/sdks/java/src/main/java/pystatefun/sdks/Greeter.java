package pystatefun.sdks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.statefun.sdk.java.Context;
import org.apache.flink.statefun.sdk.java.StatefulFunctionSpec;
import org.apache.flink.statefun.sdk.java.TypeName;
import org.apache.flink.statefun.sdk.java.ValueSpec;
import org.apache.flink.statefun.sdk.java.message.EgressMessageBuilder;
import org.apache.flink.statefun.sdk.java.message.Message;
import org.apache.flink.statefun.sdk.java.message.MessageBuilder;
import org.apache.flink.statefun.sdk.java.types.Type;

/** The greeter (../README.md) on the Java SDK. */
final class Greeter {
  static final TypeName USER = TypeName.typeNameFromString("greeter/user");
  static final TypeName GREETER = TypeName.typeNameFromString("greeter/greeter");
  static final TypeName PLAYGROUND = TypeName.typeNameFromString("io.statefun.playground/egress");
  static final Type<JsonNode> VISIT = Json.type("greeter/Visit");
  static final Type<JsonNode> EGRESS_RECORD = Json.type("io.statefun.playground/EgressRecord");
  static final ValueSpec<Integer> VISITS =
      ValueSpec.named("visits").thatExpiresAfterCall(Duration.ofDays(1)).withIntType();

  private Greeter() {}

  static List<StatefulFunctionSpec> specs() {
    return List.of(
        StatefulFunctionSpec.builder(USER)
            .withValueSpec(VISITS)
            .withSupplier(() -> Greeter::user)
            .build(),
        StatefulFunctionSpec.builder(GREETER).withSupplier(() -> Greeter::greeter).build());
  }

  static CompletableFuture<Void> user(Context context, Message message) {
    String name = message.asUtf8String();
    String id = context.self().id();
    int visits = context.storage().get(VISITS).orElse(0) + 1;
    context.storage().set(VISITS, visits);
    ObjectNode visit = Json.MAPPER.createObjectNode().put("name", name).put("visits", visits);
    context.send(MessageBuilder.forAddress(GREETER, id).withCustomType(VISIT, visit).build());
    String token = "forget-" + id;
    if (visits == 1) {
      Message forgotten = MessageBuilder.forAddress(GREETER, id).withValue("Forgotten " + name).build();
      context.sendAfter(Duration.ofHours(1), token, forgotten);
    } else if (visits == 2) {
      context.cancelDelayedMessage(token);
      Message back = MessageBuilder.forAddress(GREETER, id).withValue("Welcome back " + name).build();
      context.sendAfter(Duration.ofMillis(100), back);
    }
    return context.done();
  }

  static CompletableFuture<Void> greeter(Context context, Message message) {
    String payload;
    if (message.isUtf8String()) {
      payload = message.asUtf8String();
    } else {
      JsonNode visit = message.as(VISIT);
      payload = "Hello " + visit.get("name").asText() + ", visit " + visit.get("visits").asInt();
    }
    ObjectNode record = Json.MAPPER.createObjectNode().put("topic", "greetings").put("payload", payload);
    context.send(
        EgressMessageBuilder.forEgress(PLAYGROUND).withCustomType(EGRESS_RECORD, record).build());
    return context.done();
  }
}
