package pystatefun.sdks;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;
import org.apache.flink.statefun.sdk.java.StatefulFunctionSpec;
import org.apache.flink.statefun.sdk.java.StatefulFunctions;
import org.apache.flink.statefun.sdk.java.handler.RequestReplyHandler;
import org.apache.flink.statefun.sdk.java.slice.Slice;
import org.apache.flink.statefun.sdk.java.slice.Slices;

/**
 * The SDK test programs on the official Java SDK, served with the JDK's HttpServer as
 * upstream's examples serve theirs (RequestReplyHandler.handle on the request body).
 *
 * <pre>java -cp ... pystatefun.sdks.SdkServer [PORT]</pre>
 *
 * PORT defaults to 0 (any free port). Prints "PORT n" once it listens on 127.0.0.1, then
 * serves until killed: POST /statefun runs the functions, POST /vectors encodes and decodes
 * typed values (Vectors). A failing function answers 500 with the exception's text.
 */
public final class SdkServer {
  private SdkServer() {}

  public static void main(String[] args) throws IOException {
    int port = args.length > 0 ? Integer.parseInt(args[0]) : 0;
    StatefulFunctions functions = new StatefulFunctions();
    for (StatefulFunctionSpec spec : Greeter.specs()) {
      functions.withStatefulFunction(spec);
    }
    for (StatefulFunctionSpec spec : Interop.specs()) {
      functions.withStatefulFunction(spec);
    }
    RequestReplyHandler handler = functions.requestReplyHandler();
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 128);
    server.createContext("/statefun", exchange -> serve(exchange, body -> {
      Slice reply = handler.handle(Slices.wrap(body)).join();
      return reply.toByteArray();
    }));
    server.createContext("/vectors", exchange -> serve(exchange, Vectors::answer));
    server.setExecutor(Executors.newFixedThreadPool(8));
    server.start();
    System.out.println("PORT " + server.getAddress().getPort());
    System.out.flush();
  }

  interface Body {
    byte[] answer(byte[] body) throws Exception;
  }

  private static void serve(HttpExchange exchange, Body body) throws IOException {
    int status = 200;
    byte[] reply;
    try (exchange) {
      try {
        reply = body.answer(exchange.getRequestBody().readAllBytes());
      } catch (Exception e) {
        status = 500;
        reply = e.toString().getBytes(StandardCharsets.UTF_8);
      }
      exchange.getResponseHeaders().set("Content-Type", "application/octet-stream");
      exchange.sendResponseHeaders(status, reply.length == 0 ? -1 : reply.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(reply);
      }
    }
  }
}
