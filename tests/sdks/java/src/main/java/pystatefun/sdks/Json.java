package pystatefun.sdks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.statefun.sdk.java.TypeName;
import org.apache.flink.statefun.sdk.java.types.SimpleType;
import org.apache.flink.statefun.sdk.java.types.Type;

/** JSON types: the Java SDK has none built in, so they are custom types over Jackson. */
final class Json {
  static final ObjectMapper MAPPER = new ObjectMapper();

  private Json() {}

  /** A JSON type whose values are Jackson trees. */
  static Type<JsonNode> type(String typename) {
    return SimpleType.simpleImmutableTypeFrom(
        TypeName.typeNameFromString(typename), MAPPER::writeValueAsBytes, MAPPER::readTree);
  }
}
