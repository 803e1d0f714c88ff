package pystatefun.sdks;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.HexFormat;
import java.util.Map;
import org.apache.flink.statefun.sdk.java.slice.Slices;
import org.apache.flink.statefun.sdk.java.types.Type;
import org.apache.flink.statefun.sdk.java.types.Types;

/**
 * POST /vectors: a JSON list of requests, answered by a JSON list, each value encoded or
 * decoded with the SDK's own types; the protocol is in tests/support/sdk_vectors.py (bool as a
 * JSON bool, int and long as decimal strings, float and double as the hex of their IEEE 754
 * bits, string as a JSON string, json as the JSON value).
 */
final class Vectors {
  private static final Map<String, Type<?>> TYPES =
      Map.of(
          "bool", Types.booleanType(),
          "int", Types.integerType(),
          "long", Types.longType(),
          "float", Types.floatType(),
          "double", Types.doubleType(),
          "string", Types.stringType(),
          "json", Interop.ANY_JSON);

  private Vectors() {}

  static byte[] answer(byte[] body) throws java.io.IOException {
    ArrayNode answers = Json.MAPPER.createArrayNode();
    for (JsonNode request : Json.MAPPER.readTree(body)) {
      ObjectNode answer = answers.addObject();
      String type = request.get("type").asText();
      try {
        if (request.get("op").asText().equals("encode")) {
          answer.put("hex", HexFormat.of().formatHex(encode(type, request.get("value"))));
        } else {
          byte[] raw = HexFormat.of().parseHex(request.get("hex").asText());
          answer.set("value", decode(type, raw));
        }
      } catch (RuntimeException e) {
        answer.put("error", e.toString());
      }
    }
    return Json.MAPPER.writeValueAsBytes(answers);
  }

  @SuppressWarnings("unchecked")
  private static <T> byte[] serialize(String type, Object value) {
    Type<T> tpe = (Type<T>) TYPES.get(type);
    return tpe.typeSerializer().serialize((T) value).toByteArray();
  }

  private static byte[] encode(String type, JsonNode value) {
    switch (type) {
      case "bool": return serialize(type, value.booleanValue());
      case "int": return serialize(type, Integer.parseInt(value.asText()));
      case "long": return serialize(type, Long.parseLong(value.asText()));
      case "float": return serialize(type, Float.intBitsToFloat(Integer.parseUnsignedInt(value.asText(), 16)));
      case "double": return serialize(type, Double.longBitsToDouble(Long.parseUnsignedLong(value.asText(), 16)));
      case "string": return serialize(type, value.textValue());
      case "json": return serialize(type, value);
      default: throw new IllegalArgumentException("no type " + type);
    }
  }

  private static JsonNode decode(String type, byte[] raw) {
    Type<?> tpe = TYPES.get(type);
    if (tpe == null) {
      throw new IllegalArgumentException("no type " + type);
    }
    Object value = tpe.typeSerializer().deserialize(Slices.wrap(raw));
    switch (type) {
      case "int": case "long": return Json.MAPPER.getNodeFactory().textNode(value.toString());
      case "float":
        return Json.MAPPER.getNodeFactory().textNode(String.format("%08x", Float.floatToRawIntBits((Float) value)));
      case "double":
        return Json.MAPPER.getNodeFactory().textNode(String.format("%016x", Double.doubleToRawLongBits((Double) value)));
      default: return Json.MAPPER.valueToTree(value);
    }
  }
}
