// A test peer built on Eclipse Leshan (leshan-server-cf 2.0.0-M15, Californium 3.12): an LwM2M
// bootstrap server on loopback with a CoAP endpoint and a CoAPS endpoint (PSK, the keys from an
// in-memory security store), its bootstrap configurations given at run time through stdin.
// host_tests/peers/leshan_bootstrap.py starts it and talks to it. It is compiled with
// LeshanPeer.java and shares its JSON output and rendering helpers (LeshanPeer.emit, .node, ...).
//
//   java -cp 'build/leshan/classes:build/leshan/lib/*' LeshanBootstrapPeer
//        [--host 127.0.0.1] [--coap-port N] [--coaps-port N] [--trace]
//
// A port of 0 (the default) lets the kernel choose; the "listening" event tells the ports.
// --trace prints every CoAP message the endpoints send and receive to stderr.
//
// Leshan runs its default bootstrap session: for a client whose endpoint has a config, the
// Deletes of "delete", then a Write of each Security instance, then of each Server instance
// (each a whole instance, in the client's preferred content format ("pct" of its Bootstrap-
// Request), else TLV), then Bootstrap-Finish. With "autoIdForSecurityObject" a Bootstrap-
// Discover of / comes first, and the Security instances get ids 0, 1, ... skipping the bootstrap
// account's (the /0 instance without ssid; none in the answer: Leshan goes straight to Finish).
// An error answer to anything but Finish does not stop the session; no answer at all does.
// A client is let in over CoAP only if no PSK is known for its endpoint, over CoAPS only with the
// PSK of "add-psk".
//
// stdout: one JSON object per line, nothing else (Leshan's own logs go to stderr):
//   {"event":"listening","host":..,"coap_port":N,"coaps_port":N}
//   {"event":"bootstrap-request","endpoint":..,"pct":11542|null,"format":"TLV"|null,
//    "attributes":{..},"address":..,"port":N,"secure":false,"identity":null}
//       (the Bootstrap-Request as it came; identity: the PSK identity over CoAPS)
//   {"event":"bootstrap-authorized","endpoint":..,"session":..,"transport":"coap","format":"TLV"}
//       (format: the one the session writes in)
//   {"event":"bootstrap-send","endpoint":..,"session":..,"type":"Delete","path":"/0"}
//   {"event":"bootstrap-send",.., "type":"Write","path":"/0/1","format":"SENML_CBOR","ct":112,
//    "content":{"kind":"instance",..}}                      (content rendered as LeshanPeer does)
//   {"event":"bootstrap-response","endpoint":..,"session":..,"type":"Write","path":"/0/1",
//    "code":"CHANGED","coap":"2.04"}
//       (type Delete, Write, Discover, Read or Finish; path null for Finish; an error answer
//        has "error"; an answer with a payload has its "ct" and "format", a Discover's "links"
//        (CoRE Link Format as Leshan parsed it), a Read's "content")
//   {"event":"bootstrap-response",.., "code":null,"error":..,"exception":..}
//       (no valid answer: a timeout, or one Leshan could not decode)
//   {"event":"bootstrap-finished","endpoint":..,"session":..}
//   {"event":"bootstrap-failed","endpoint":..,"session":..|null,"cause":"NO_BOOTSTRAP_CONFIG"}
//       (cause: UNAUTHORIZED, NO_BOOTSTRAP_CONFIG, REQUEST_FAILED, FINISH_FAILED, CANCELLED or
//        INTERNAL_SERVER_ERROR)
//   {"event":"error","message":..}                                 (a command line it cannot read)
// stdin: one JSON command per line; each gets exactly one answer with the same id,
// {"id":1,"ok":true} or {"id":1,"ok":false,"error":..,"exception":..}:
//   {"id":1,"op":"config","endpoint":"ep","servers":[{"ssid":101,"uri":"coaps://127.0.0.1:5684",
//    "lifetime":300,"binding":"U","mode":"psk","identity":"id","key":"00112233"}],
//    "delete":["/0","/1"],"autoIdForSecurityObject":false,"format":"TLV"}
//       (replaces the endpoint's config. Per server: "lifetime" (default 86400), "binding"
//        (default "U"), "mode" "nosec" (default) or "psk" with "identity" and "key" (hex),
//        and when given "retry_count", "retry_timer", "sequence_delay", "sequence_retry"
//        (/1/x/17 to /1/x/20);
//        server i (from 0) goes to Security instance i + 1 (0 stays the bootstrap account's)
//        and Server instance i unless "security_instance" or "server_instance" say otherwise
//        (autoIdForSecurityObject numbers the Security instances itself).
//        "delete" defaults to ["/0","/1"]; "format" forces a content format for the Writes;
//        "acls":[{"object":3311,"instance":0,"rights":{"101":3,"102":1},"owner":101}] gives
//        Access Control instances 0, 1, ... written after the servers)
//   {"id":2,"op":"add-psk","endpoint":"ep","identity":"id","key":"00112233"}
//       (the endpoint may bootstrap over CoAPS with that PSK, and no longer over CoAP)
//   {"id":3,"op":"stop"}                                           (answers, then ends)
// Closing stdin also stops the server and ends the process.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.eclipse.leshan.core.SecurityMode;
import org.eclipse.leshan.core.endpoint.Protocol;
import org.eclipse.leshan.core.peer.IpPeer;
import org.eclipse.leshan.core.peer.LwM2mIdentity;
import org.eclipse.leshan.core.peer.LwM2mPeer;
import org.eclipse.leshan.core.peer.PskIdentity;
import org.eclipse.leshan.core.request.BindingMode;
import org.eclipse.leshan.core.request.BootstrapDownlinkRequest;
import org.eclipse.leshan.core.request.BootstrapReadRequest;
import org.eclipse.leshan.core.request.BootstrapRequest;
import org.eclipse.leshan.core.request.BootstrapWriteRequest;
import org.eclipse.leshan.core.request.ContentFormat;
import org.eclipse.leshan.core.response.BootstrapDiscoverResponse;
import org.eclipse.leshan.core.response.BootstrapReadResponse;
import org.eclipse.leshan.core.response.LwM2mResponse;
import org.eclipse.leshan.core.util.Hex;
import org.eclipse.leshan.core.util.datatype.ULong;
import org.eclipse.leshan.server.bootstrap.BootstrapConfig;
import org.eclipse.leshan.server.bootstrap.BootstrapFailureCause;
import org.eclipse.leshan.server.bootstrap.BootstrapSession;
import org.eclipse.leshan.server.bootstrap.BootstrapSessionAdapter;
import org.eclipse.leshan.server.bootstrap.InMemoryBootstrapConfigStore;
import org.eclipse.leshan.server.bootstrap.LeshanBootstrapServer;
import org.eclipse.leshan.server.bootstrap.LeshanBootstrapServerBuilder;
import org.eclipse.leshan.server.bootstrap.endpoint.LwM2mBootstrapServerEndpoint;
import org.eclipse.leshan.server.californium.bootstrap.endpoint.CaliforniumBootstrapServerEndpoint;
import org.eclipse.leshan.server.californium.bootstrap.endpoint.CaliforniumBootstrapServerEndpointsProvider;
import org.eclipse.leshan.server.californium.bootstrap.endpoint.coap.CoapBootstrapServerProtocolProvider;
import org.eclipse.leshan.server.californium.bootstrap.endpoint.coaps.CoapsBootstrapServerProtocolProvider;
import org.eclipse.leshan.server.security.BootstrapSecurityStoreAdapter;
import org.eclipse.leshan.server.security.InMemorySecurityStore;
import org.eclipse.leshan.server.security.SecurityInfo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

public class LeshanBootstrapPeer {
    final LeshanBootstrapServer server;
    final InMemoryBootstrapConfigStore configs = new InMemoryBootstrapConfigStore();
    final InMemorySecurityStore security = new InMemorySecurityStore();

    public static void main(String[] args) throws Exception {
        // stdout carries our JSON lines only (LeshanPeer.OUT): any library printing goes to stderr
        System.setOut(System.err);
        String host = "127.0.0.1";
        int coapPort = 0, coapsPort = 0;
        boolean trace = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--host")) host = args[++i];
            else if (a.equals("--coap-port")) coapPort = Integer.parseInt(args[++i]);
            else if (a.equals("--coaps-port")) coapsPort = Integer.parseInt(args[++i]);
            else if (a.equals("--trace")) trace = true;
            else {
                System.err.println("usage: LeshanBootstrapPeer [--host H] [--coap-port N] [--coaps-port N] [--trace]");
                System.exit(2);
            }
        }
        LeshanBootstrapPeer peer;
        try {
            peer = new LeshanBootstrapPeer(host, coapPort, coapsPort, trace);
        } catch (Exception ex) {
            // Leshan's threads would keep the JVM alive after main ends: a failed start ends it
            ex.printStackTrace();
            System.exit(1);
            return;
        }
        peer.run();
    }

    LeshanBootstrapPeer(String host, int coapPort, int coapsPort, boolean trace) {
        CaliforniumBootstrapServerEndpointsProvider.Builder endpoints = new CaliforniumBootstrapServerEndpointsProvider.Builder(
                new CoapBootstrapServerProtocolProvider(), new CoapsBootstrapServerProtocolProvider());
        endpoints.addEndpoint(new InetSocketAddress(host, coapPort), Protocol.COAP);
        endpoints.addEndpoint(new InetSocketAddress(host, coapsPort), Protocol.COAPS);
        // The Californium configuration stays in memory (nothing written to the working folder).
        endpoints.setConfiguration(endpoints.createDefaultConfiguration());

        LeshanBootstrapServerBuilder builder = new LeshanBootstrapServerBuilder();
        builder.setConfigStore(configs);
        // Without a security store Leshan creates no CoAPS endpoint at all; the same store gives
        // the DTLS handshake its PSKs and the authorizer the endpoint's expected identity.
        builder.setSecurityStore(new BootstrapSecurityStoreAdapter(security));
        builder.setEndpointsProviders(endpoints.build());
        server = builder.build();
        if (server.getEndpoint(Protocol.COAPS) == null) {
            throw new IllegalStateException("no CoAPS endpoint: Leshan could not configure DTLS (see its warning above)");
        }
        server.addListener(new Events());

        if (trace) {
            for (LwM2mBootstrapServerEndpoint endpoint : server.getEndpoints()) {
                if (endpoint instanceof CaliforniumBootstrapServerEndpoint) {
                    String name = endpoint.getProtocol().getUriScheme();
                    ((CaliforniumBootstrapServerEndpoint) endpoint).getCoapEndpoint().addInterceptor(new LeshanPeer.Tracer(name));
                }
            }
        }
    }

    void run() throws Exception {
        server.start();
        ObjectNode e = LeshanPeer.NODES.objectNode();
        for (LwM2mBootstrapServerEndpoint endpoint : server.getEndpoints()) {
            // the bound address: the port the kernel chose when 0 was asked for
            InetSocketAddress bound = ((CaliforniumBootstrapServerEndpoint) endpoint).getCoapEndpoint().getAddress();
            e.put("host", bound.getAddress().getHostAddress());
            e.put(endpoint.getProtocol().getUriScheme() + "_port", bound.getPort());
        }
        LeshanPeer.emit(LeshanPeer.event("listening", e));

        // Every command is quick (nothing is sent to a client), so they run one by one here.
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) continue;
            JsonNode cmd;
            try {
                cmd = LeshanPeer.JSON.readTree(line);
                if (!cmd.isObject()) throw new IllegalArgumentException("not an object");
            } catch (Exception ex) {
                ObjectNode err = LeshanPeer.NODES.objectNode();
                err.put("message", "bad command line: " + line);
                LeshanPeer.emit(LeshanPeer.event("error", err));
                continue;
            }
            LeshanPeer.emit(answer(cmd));
            if ("stop".equals(cmd.path("op").asText())) break;
        }
        server.destroy();
        LeshanPeer.OUT.flush();
        System.exit(0);
    }

    // -- commands

    ObjectNode answer(JsonNode cmd) {
        ObjectNode answer = LeshanPeer.NODES.objectNode();
        answer.set("id", cmd.get("id"));
        try {
            dispatch(cmd);
            answer.put("ok", true);
        } catch (Exception ex) {
            answer.put("ok", false);
            answer.put("error", LeshanPeer.describe(ex));
            answer.put("exception", ex.getClass().getSimpleName());
        }
        return answer;
    }

    void dispatch(JsonNode cmd) throws Exception {
        String op = LeshanPeer.text(cmd, "op");
        switch (op) {
        case "config":
            // the store checks the config (a security instance for each server, PSK fields...)
            configs.add(LeshanPeer.text(cmd, "endpoint"), bootstrapConfig(cmd));
            break;
        case "add-psk": {
            String endpoint = LeshanPeer.text(cmd, "endpoint");
            byte[] key = Hex.decodeHex(LeshanPeer.text(cmd, "key").toCharArray());
            security.remove(endpoint, false); // a new key for the same endpoint replaces the old one
            security.add(SecurityInfo.newPreSharedKeyInfo(endpoint, LeshanPeer.text(cmd, "identity"), key));
            break;
        }
        case "stop":
            break;
        default:
            throw new IllegalArgumentException("unknown op " + op);
        }
    }

    static BootstrapConfig bootstrapConfig(JsonNode cmd) {
        BootstrapConfig config = new BootstrapConfig();
        // Leshan's own default deletes nothing; a client's old servers would survive
        config.toDelete = new ArrayList<>(List.of("/0", "/1"));
        if (cmd.has("delete")) {
            config.toDelete.clear();
            for (JsonNode path : cmd.get("delete")) config.toDelete.add(path.asText());
        }
        config.autoIdForSecurityObject = cmd.path("autoIdForSecurityObject").asBoolean(false);
        if (cmd.hasNonNull("format")) config.contentFormat = LeshanPeer.contentFormat(cmd.get("format").asText());
        int i = 0;
        for (JsonNode s : cmd.path("servers")) {
            int ssid = Integer.parseInt(LeshanPeer.text(s, "ssid"));
            BootstrapConfig.ServerConfig srv = new BootstrapConfig.ServerConfig();
            srv.shortId = ssid;
            if (s.has("lifetime")) srv.lifetime = s.get("lifetime").asInt();
            if (s.has("binding")) srv.binding = BindingMode.parse(s.get("binding").asText());
            // the registration retries of TS Core 6.2.1.1 (/1/x/17 to /1/x/20), when given
            if (s.has("retry_count")) srv.communicationRetryCount = ULong.valueOf(s.get("retry_count").asLong());
            if (s.has("retry_timer")) srv.CommunicationRetryTimer = ULong.valueOf(s.get("retry_timer").asLong());
            if (s.has("sequence_delay")) srv.SequenceDelayTimer = ULong.valueOf(s.get("sequence_delay").asLong());
            if (s.has("sequence_retry")) srv.SequenceRetryCount = ULong.valueOf(s.get("sequence_retry").asLong());

            BootstrapConfig.ServerSecurity sec = new BootstrapConfig.ServerSecurity();
            sec.uri = LeshanPeer.text(s, "uri");
            sec.bootstrapServer = false;
            sec.serverId = ssid;
            String mode = s.path("mode").asText("nosec");
            if (mode.equals("psk")) {
                sec.securityMode = SecurityMode.PSK;
                sec.publicKeyOrId = LeshanPeer.text(s, "identity").getBytes(StandardCharsets.UTF_8);
                sec.secretKey = Hex.decodeHex(LeshanPeer.text(s, "key").toCharArray());
            } else if (mode.equals("nosec")) {
                sec.securityMode = SecurityMode.NO_SEC;
            } else {
                throw new IllegalArgumentException("unknown mode " + mode + " (nosec or psk)");
            }
            config.security.put(s.path("security_instance").asInt(i + 1), sec);
            config.servers.put(s.path("server_instance").asInt(i), srv);
            i++;
        }
        // Access Control instances, written after the Security and Server instances
        int a = 0;
        for (JsonNode entry : cmd.path("acls")) {
            BootstrapConfig.ACLConfig acl = new BootstrapConfig.ACLConfig();
            acl.objectId = entry.get("object").asInt();
            acl.objectInstanceId = entry.get("instance").asInt();
            acl.acls = new HashMap<>();
            entry.path("rights").fields().forEachRemaining(f -> acl.acls.put(Integer.parseInt(f.getKey()), f.getValue().asLong()));
            if (entry.hasNonNull("owner")) acl.AccessControlOwner = entry.get("owner").asInt();
            config.acls.put(a++, acl);
        }
        return config;
    }

    // -- the session's steps, as events

    class Events extends BootstrapSessionAdapter {
        @Override
        public void sessionInitiated(BootstrapRequest request, LwM2mPeer client) {
            ObjectNode e = LeshanPeer.NODES.objectNode();
            e.put("endpoint", request.getEndpointName());
            ContentFormat pct = request.getPreferredContentFormat();
            e.put("pct", pct == null ? null : pct.getCode());
            e.put("format", pct == null ? null : pct.getName());
            ObjectNode attrs = e.putObject("attributes");
            for (Map.Entry<String, String> a : request.getAdditionalAttributes().entrySet()) {
                attrs.put(a.getKey(), a.getValue());
            }
            if (client instanceof IpPeer) {
                InetSocketAddress from = ((IpPeer) client).getSocketAddress();
                e.put("address", from.getAddress().getHostAddress());
                e.put("port", from.getPort());
            }
            LwM2mIdentity identity = client.getIdentity();
            e.put("secure", identity != null && identity.isSecure());
            e.put("identity", identity instanceof PskIdentity ? ((PskIdentity) identity).getPskIdentity() : null);
            LeshanPeer.emit(LeshanPeer.event("bootstrap-request", e));
        }

        @Override
        public void unAuthorized(BootstrapRequest request, LwM2mPeer client) {
            // Leshan calls failed() only for sessions it authorized: this is the same end
            ObjectNode e = LeshanPeer.NODES.objectNode();
            e.put("endpoint", request.getEndpointName());
            e.putNull("session");
            e.put("cause", BootstrapFailureCause.UNAUTHORIZED.name());
            LeshanPeer.emit(LeshanPeer.event("bootstrap-failed", e));
        }

        @Override
        public void authorized(BootstrapSession session) {
            ObjectNode e = session(session);
            e.put("transport", session.getEndpointUsed() == null ? null : session.getEndpointUsed().getScheme());
            e.put("format", session.getContentFormat().getName());
            LeshanPeer.emit(LeshanPeer.event("bootstrap-authorized", e));
        }

        @Override
        public void sendRequest(BootstrapSession session, BootstrapDownlinkRequest<? extends LwM2mResponse> request) {
            ObjectNode e = request(session, request);
            ContentFormat format = null;
            if (request instanceof BootstrapWriteRequest) {
                BootstrapWriteRequest write = (BootstrapWriteRequest) request;
                format = write.getContentFormat();
                e.set("content", LeshanPeer.node(write.getNode()));
            } else if (request instanceof BootstrapReadRequest) {
                format = ((BootstrapReadRequest) request).getContentFormat();
            }
            if (format != null) {
                e.put("format", format.getName());
                e.put("ct", format.getCode());
            }
            LeshanPeer.emit(LeshanPeer.event("bootstrap-send", e));
        }

        @Override
        public void onResponseSuccess(BootstrapSession session, BootstrapDownlinkRequest<? extends LwM2mResponse> request,
                LwM2mResponse response) {
            answered(session, request, response);
        }

        @Override
        public void onResponseError(BootstrapSession session, BootstrapDownlinkRequest<? extends LwM2mResponse> request,
                LwM2mResponse response) {
            answered(session, request, response);
        }

        void answered(BootstrapSession session, BootstrapDownlinkRequest<? extends LwM2mResponse> request,
                LwM2mResponse response) {
            ObjectNode e = request(session, request);
            e.put("code", response.getCode().getName());
            LeshanPeer.coapDetails(e, response);
            if (response.isFailure()) e.put("error", response.getErrorMessage());
            if (response instanceof BootstrapDiscoverResponse && response.isSuccess()) {
                e.put("links", LeshanPeer.links(((BootstrapDiscoverResponse) response).getObjectLinks()));
            }
            if (response instanceof BootstrapReadResponse && response.isSuccess()) {
                e.set("content", LeshanPeer.node(((BootstrapReadResponse) response).getContent()));
            }
            LeshanPeer.emit(LeshanPeer.event("bootstrap-response", e));
        }

        @Override
        public void onRequestFailure(BootstrapSession session, BootstrapDownlinkRequest<? extends LwM2mResponse> request,
                Throwable cause) {
            ObjectNode e = request(session, request);
            e.putNull("code");
            e.put("error", LeshanPeer.describe(cause));
            e.put("exception", cause.getClass().getSimpleName());
            LeshanPeer.emit(LeshanPeer.event("bootstrap-response", e));
        }

        @Override
        public void end(BootstrapSession session) {
            LeshanPeer.emit(LeshanPeer.event("bootstrap-finished", session(session)));
        }

        @Override
        public void failed(BootstrapSession session, BootstrapFailureCause cause) {
            ObjectNode e = session(session);
            e.put("cause", cause.name());
            LeshanPeer.emit(LeshanPeer.event("bootstrap-failed", e));
        }
    }

    static ObjectNode session(BootstrapSession session) {
        ObjectNode e = LeshanPeer.NODES.objectNode();
        e.put("endpoint", session.getEndpoint());
        e.put("session", session.getId());
        return e;
    }

    static ObjectNode request(BootstrapSession session, BootstrapDownlinkRequest<? extends LwM2mResponse> request) {
        // "BootstrapWriteRequest" -> "Write"; Bootstrap-Finish has no path
        ObjectNode e = session(session);
        e.put("type", request.getClass().getSimpleName().replaceFirst("^Bootstrap", "").replaceFirst("Request$", ""));
        e.put("path", request.getPath() == null ? null : request.getPath().toString());
        return e;
    }
}
