// A test peer built on Eclipse Leshan (leshan-server-cf 2.0.0-M15, Californium 3.12): an LwM2M
// server on loopback with a CoAP endpoint and a CoAPS endpoint (PSK and X.509 clients from an
// in-memory security store), driven through stdin and stdout like host_tests/peers/lwm2m_server.js. The demo
// server (with its REST API) is not on Maven Central for these versions, hence this file;
// host_tests/peers/leshan_server.py starts it and talks to it.
//
//   java -cp 'build/leshan/classes:build/leshan/lib/*' LeshanPeer
//        [--host 127.0.0.1] [--coap-port N] [--coaps-port N] [--models DIR]... [--trace]
//        [--x509-cert F --x509-key F] [--x509-trust F]...
//
// A port of 0 (the default) lets the kernel choose; the "listening" event tells the ports.
// --models loads every DDF file (*.xml) of DIR on top of Leshan's own core objects (0-7):
// Leshan decodes a payload only with the model of the object version the client registered.
// --trace prints every CoAP message the endpoints send and receive to stderr.
// --x509-cert and --x509-key give the CoAPS endpoint an X.509 identity: the certificate file
// (DER or PEM; a PEM file may hold the chain, the server's certificate first) and its private
// key (DER or PEM, PKCS#8 or SEC1 "EC PRIVATE KEY"; EC P-256 for the ECDHE-ECDSA suites).
// --x509-trust (repeatable; DER or PEM, a PEM file may hold several) are the certificates
// (CAs) a client's certificate must chain to. With them the endpoint offers the ECDHE-ECDSA
// suites beside the PSK ones; a client's X.509 identity is the CN of its certificate, which
// Leshan takes only for an endpoint of that name registered with "add-x509".
//
// stdout: one JSON object per line, nothing else (Leshan's own logs go to stderr):
//   {"event":"listening","host":..,"coap_port":N,"coaps_port":N}
//   {"event":"registered","endpoint":..,"id":..,"lifetime":N,"binding":"U","version":"1.1",
//    "links":"</>;rt=..,</1/0>,..","objects":{"1":"1.1",..},"address":..,"port":N,
//    "secure":false,"identity":null,"identity_type":null,"queue":false,"attributes":{..},
//    "replaced":false}
//    (identity: the PSK identity or the certificate's CN; identity_type "psk", "x509", "rpk"
//     or "oscore")
//   {"event":"updated", <the registration after the update as above>,
//    "update":{"lifetime":N|null,"binding":..|null,"links":..|null,"sms":..|null}}
//   {"event":"deregistered","endpoint":..,"id":..,"expired":false,"replaced":false}
//   {"event":"notification","endpoint":..,"path":"/3303/0/5700","code":"CONTENT","ct":N,
//    "format":"TLV","observe":N,"content":{..}}
//   {"event":"observation-error","endpoint":..,"path":..,"error":..}
//   {"event":"send","endpoint":..,"format":"SENML_CBOR","nodes":{"/3/0/0":{..},..}}   (a Send to /dp)
//   {"event":"send-error","endpoint":..,"error":..}
//   {"event":"awake","endpoint":..} / {"event":"sleeping","endpoint":..}   (a queue-mode client,
//    awake for --awake-time ms after its last message)
//   {"event":"error","message":..}                                 (a command line it cannot read)
// stdin: one JSON command per line; each gets exactly one answer with the same id:
//   {"id":1,"op":"clients"}
//   {"id":2,"op":"read","endpoint":"ep","path":"/3/0","format":"TLV"}     (format optional)
//   {"id":3,"op":"write","endpoint":"ep","path":"/1/0/1","value":600,"format":"TEXT"}
//       (one resource or resource instance; its type from the model unless "type" is given;
//        TIME as Unix seconds, OPAQUE as hex or "file":path for a file's bytes, OBJLNK as "3:0";
//        a payload larger than a block goes block-wise, as Californium splits it)
//   {"id":4,"op":"execute","endpoint":"ep","path":"/1/0/8","args":"0='x'"}   (args optional)
//   {"id":8,"op":"read-composite","endpoint":"ep","path":"/","paths":["/3/0/0","/3303/0"],"format":"SENML_CBOR"}
//   {"id":10,"op":"observe-composite","endpoint":"ep","path":"/","paths":[..],"format":"SENML_JSON"}
//       (then {"event":"composite-notification","endpoint":..,"code":..,"content":{path: node}})
//   {"id":9,"op":"write-composite","endpoint":"ep","path":"/","values":{"/1/0/1":600,"/3/0/14":"+02:00"},"format":"SENML_JSON"}
//   {"id":5,"op":"create","endpoint":"ep","path":"/3303","instance":1,"resources":{"5750":"x"}}
//   {"id":6,"op":"delete","endpoint":"ep","path":"/3303/1"}
//   {"id":5,"op":"discover","endpoint":"ep","path":"/3/0"}
//   {"id":6,"op":"write-attributes","endpoint":"ep","path":"/3/0/13","attributes":{"pmin":10,"gt":null}}
//       (null: the attribute without a value, which removes it)
//   {"id":7,"op":"observe","endpoint":"ep","path":"/3303/0/5700","format":"TLV"}
//   {"id":8,"op":"cancel-observe","endpoint":"ep","path":"/3303/0/5700","active":false}
//       (passive: Leshan forgets it and the client's next notification gets a Reset; active:
//        a GET with Observe 1)
//   {"id":9,"op":"add-psk","endpoint":"ep","identity":"id","key":"00112233"}
//   {"id":10,"op":"add-x509","endpoint":"ep"}        (a client certificate with CN = ep)
//   {"id":11,"op":"remove-security","endpoint":"ep"}
//   Every command may carry "timeout" (seconds, default 10) for the request it sends.
// Answers:
//   {"id":2,"ok":true,"code":"CONTENT","coap":"2.05","ct":11542,"format":"TLV","content":{..}}
//   {"id":2,"ok":false,"code":"NOT_FOUND","coap":"4.04","error":"message from the client"}
//   {"id":2,"ok":false,"error":"...","exception":"InvalidResponseException"}   (nothing valid came back)
//   {"id":2,"ok":false,"error":"timeout: no answer within 10 s"}
// Content, as decoded by Leshan:
//   resource:          {"kind":"resource","id":0,"type":"STRING","value":"..."}
//   multiple resource: {"kind":"multiple","id":11,"type":"INTEGER","values":{"0":0}}
//   resource instance: {"kind":"resource-instance","id":0,"type":"INTEGER","value":0}
//   instance:          {"kind":"instance","id":0,"resources":{"0":"...","11":{"0":0}},
//                       "types":{"0":"STRING","11":"INTEGER"}}
//   object:            {"kind":"object","id":3,"instances":{"0":{<instance>}}}
// Values: STRING as a string, INTEGER and UNSIGNED_INTEGER as integers, FLOAT as a number,
// BOOLEAN, TIME as Unix seconds, OPAQUE as lowercase hex, OBJLNK as "3:0", CORELINK as text.
// Closing stdin stops the server and ends the process.
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Date;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import org.eclipse.californium.core.coap.EmptyMessage;
import org.eclipse.californium.core.coap.Request;
import org.eclipse.californium.core.coap.Response;
import org.eclipse.californium.core.network.interceptors.MessageInterceptor;
import org.eclipse.californium.elements.util.Asn1DerDecoder;
import org.eclipse.californium.elements.util.PemReader;
import org.eclipse.leshan.core.endpoint.Protocol;
import org.eclipse.leshan.core.link.Link;
import org.eclipse.leshan.core.link.attributes.Attribute;
import org.eclipse.leshan.core.link.lwm2m.attributes.DefaultLwM2mAttributeParser;
import org.eclipse.leshan.core.link.lwm2m.attributes.LwM2mAttributeSet;
import org.eclipse.leshan.core.model.LwM2mModel;
import org.eclipse.leshan.core.model.ObjectLoader;
import org.eclipse.leshan.core.model.ObjectModel;
import org.eclipse.leshan.core.model.ResourceModel;
import org.eclipse.leshan.core.node.LwM2mMultipleResource;
import org.eclipse.leshan.core.node.LwM2mNode;
import org.eclipse.leshan.core.node.LwM2mObject;
import org.eclipse.leshan.core.node.LwM2mObjectInstance;
import org.eclipse.leshan.core.node.LwM2mPath;
import org.eclipse.leshan.core.node.LwM2mResource;
import org.eclipse.leshan.core.node.LwM2mResourceInstance;
import org.eclipse.leshan.core.node.LwM2mSingleResource;
import org.eclipse.leshan.core.node.ObjectLink;
import org.eclipse.leshan.core.node.TimestampedLwM2mNodes;
import org.eclipse.leshan.core.observation.CompositeObservation;
import org.eclipse.leshan.core.observation.Observation;
import org.eclipse.leshan.core.observation.SingleObservation;
import org.eclipse.leshan.core.peer.LwM2mIdentity;
import org.eclipse.leshan.core.peer.LwM2mPeer;
import org.eclipse.leshan.core.peer.PskIdentity;
import org.eclipse.leshan.core.peer.RpkIdentity;
import org.eclipse.leshan.core.peer.X509Identity;
import org.eclipse.leshan.core.request.CancelObservationRequest;
import org.eclipse.leshan.core.request.ContentFormat;
import org.eclipse.leshan.core.request.CreateRequest;
import org.eclipse.leshan.core.request.DeleteRequest;
import org.eclipse.leshan.core.request.DiscoverRequest;
import org.eclipse.leshan.core.request.DownlinkRequest;
import org.eclipse.leshan.core.request.ExecuteRequest;
import org.eclipse.leshan.core.request.ObserveCompositeRequest;
import org.eclipse.leshan.core.request.ReadCompositeRequest;
import org.eclipse.leshan.core.request.WriteCompositeRequest;
import org.eclipse.leshan.core.response.ReadCompositeResponse;
import org.eclipse.leshan.core.request.SendRequest;
import org.eclipse.leshan.core.request.ObserveRequest;
import org.eclipse.leshan.core.request.ReadRequest;
import org.eclipse.leshan.core.request.WriteAttributesRequest;
import org.eclipse.leshan.core.request.WriteRequest;
import org.eclipse.leshan.core.response.DiscoverResponse;
import org.eclipse.leshan.core.response.LwM2mResponse;
import org.eclipse.leshan.core.response.ObserveCompositeResponse;
import org.eclipse.leshan.core.response.ObserveResponse;
import org.eclipse.leshan.core.response.ReadResponse;
import org.eclipse.leshan.core.util.Hex;
import org.eclipse.leshan.core.util.datatype.ULong;
import org.eclipse.leshan.server.LeshanServer;
import org.eclipse.leshan.server.LeshanServerBuilder;
import org.eclipse.leshan.server.californium.endpoint.CaliforniumServerEndpoint;
import org.eclipse.leshan.server.californium.endpoint.CaliforniumServerEndpointsProvider;
import org.eclipse.leshan.server.californium.endpoint.coap.CoapServerProtocolProvider;
import org.eclipse.leshan.server.californium.endpoint.coaps.CoapsServerProtocolProvider;
import org.eclipse.leshan.server.endpoint.LwM2mServerEndpoint;
import org.eclipse.leshan.server.model.VersionedModelProvider;
import org.eclipse.leshan.server.observation.ObservationListener;
import org.eclipse.leshan.server.registration.Registration;
import org.eclipse.leshan.server.registration.RegistrationListener;
import org.eclipse.leshan.server.queue.PresenceListener;
import org.eclipse.leshan.server.queue.StaticClientAwakeTimeProvider;
import org.eclipse.leshan.server.send.SendListener;
import org.eclipse.leshan.server.registration.RegistrationUpdate;
import org.eclipse.leshan.server.security.InMemorySecurityStore;
import org.eclipse.leshan.server.security.SecurityInfo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

public class LeshanPeer {
    static final ObjectMapper JSON = new ObjectMapper();
    static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    static final long DEFAULT_TIMEOUT_MS = 10_000;
    // stdout carries our JSON lines only: the real one, kept here before anything else can
    // print to it, while System.out is pointed at stderr for any library that would.
    static final PrintStream OUT = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false,
            StandardCharsets.UTF_8);

    final LeshanServer server;
    final InMemorySecurityStore security = new InMemorySecurityStore();
    // Commands wait for the client on their own threads, so a slow answer holds up nothing.
    final ExecutorService workers = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "peer-command");
        t.setDaemon(true);
        return t;
    });

    public static void main(String[] args) throws Exception {
        System.setOut(System.err);
        String host = "127.0.0.1";
        int coapPort = 0, coapsPort = 0;
        int awakeMs = 93000;  // Leshan's default: how long a queue-mode client counts as awake
        boolean trace = false;
        List<File> modelDirs = new ArrayList<>();
        X509 x509 = new X509();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--host")) host = args[++i];
            else if (a.equals("--coap-port")) coapPort = Integer.parseInt(args[++i]);
            else if (a.equals("--coaps-port")) coapsPort = Integer.parseInt(args[++i]);
            else if (a.equals("--models")) modelDirs.add(new File(args[++i]));
            else if (a.equals("--trace")) trace = true;
            else if (a.equals("--awake-time")) awakeMs = Integer.parseInt(args[++i]);
            else if (a.equals("--x509-cert")) x509.chain = certificates(new File(args[++i])).toArray(new X509Certificate[0]);
            else if (a.equals("--x509-key")) x509.key = privateKey(new File(args[++i]));
            else if (a.equals("--x509-trust")) x509.trust.addAll(certificates(new File(args[++i])));
            else {
                System.err.println("usage: LeshanPeer [--host H] [--coap-port N] [--coaps-port N] [--models DIR]... [--trace]"
                        + " [--x509-cert F --x509-key F] [--x509-trust F]... [--awake-time MS]");
                System.exit(2);
            }
        }
        if ((x509.chain == null) != (x509.key == null)) {
            System.err.println("LeshanPeer: --x509-cert and --x509-key go together");
            System.exit(2);
        }
        LeshanPeer peer;
        try {
            peer = new LeshanPeer(host, coapPort, coapsPort, modelDirs, trace, x509, awakeMs);
        } catch (Exception ex) {
            // Leshan's threads would keep the JVM alive after main ends: a failed start ends it
            ex.printStackTrace();
            System.exit(1);
            return;
        }
        peer.run();
    }

    // The CoAPS endpoint's own certificate chain and key, and the certificates it trusts.
    static class X509 {
        X509Certificate[] chain;
        PrivateKey key;
        List<Certificate> trust = new ArrayList<>();
    }

    LeshanPeer(String host, int coapPort, int coapsPort, List<File> modelDirs, boolean trace, X509 x509, int awakeMs) {
        // Object models: Leshan's core objects, then the DDF folders (a later file wins for
        // the same id and version).
        List<ObjectModel> models = ObjectLoader.loadAllDefault();
        for (File dir : modelDirs) {
            models.addAll(ObjectLoader.loadObjectsFromDir(dir, false));
        }

        // Two endpoints on the given address: CoAP (NoSec) and CoAPS (PSK, the keys from the
        // security store; with --x509-cert and --x509-key also X.509, so the ECDHE-ECDSA suites
        // too: Californium picks its suites from the credentials it has).
        CaliforniumServerEndpointsProvider.Builder endpoints = new CaliforniumServerEndpointsProvider.Builder(
                new CoapServerProtocolProvider(), new CoapsServerProtocolProvider());
        endpoints.addEndpoint(new InetSocketAddress(host, coapPort), Protocol.COAP);
        endpoints.addEndpoint(new InetSocketAddress(host, coapsPort), Protocol.COAPS);
        // The Californium configuration stays in memory (the demo server would write
        // Californium3.server.properties into the working folder).
        endpoints.setConfiguration(endpoints.createDefaultConfiguration());

        LeshanServerBuilder builder = new LeshanServerBuilder();
        builder.setObjectModelProvider(new VersionedModelProvider(models));
        builder.setClientAwakeTimeProvider(new StaticClientAwakeTimeProvider(awakeMs));
        builder.setSecurityStore(security);
        if (x509.chain != null) {
            builder.setCertificateChain(x509.chain);
            builder.setPrivateKey(x509.key);
            builder.setPublicKey(x509.chain[0].getPublicKey());
        }
        if (!x509.trust.isEmpty()) {
            builder.setTrustedCertificates(x509.trust.toArray(new Certificate[0]));
        }
        builder.setEndpointsProviders(endpoints.build());
        server = builder.build();
        // Leshan leaves out an endpoint it cannot configure (a key that does not match the
        // certificate, say) with only a warning: that is a failed start here.
        if (server.getEndpoint(Protocol.COAPS) == null) {
            throw new IllegalStateException("no CoAPS endpoint: Leshan could not configure DTLS (see its warning above)");
        }

        server.getRegistrationService().addListener(new RegistrationListener() {
            @Override
            public void registered(Registration reg, Registration previous, Collection<Observation> previousObservations) {
                ObjectNode e = registration(reg);
                e.put("replaced", previous != null);
                emit(event("registered", e));
            }

            @Override
            public void updated(RegistrationUpdate update, Registration updated, Registration previous) {
                ObjectNode e = registration(updated);
                ObjectNode u = e.putObject("update");
                if (update.getLifeTimeInSec() == null) u.putNull("lifetime");
                else u.put("lifetime", update.getLifeTimeInSec());
                u.put("binding", update.getBindingMode() == null ? null : bindingText(update.getBindingMode()));
                u.put("links", update.getObjectLinks() == null ? null : links(update.getObjectLinks()));
                u.put("sms", update.getSmsNumber());
                emit(event("updated", e));
            }

            @Override
            public void unregistered(Registration reg, Collection<Observation> observations, boolean expired,
                    Registration newReg) {
                ObjectNode e = NODES.objectNode();
                e.put("endpoint", reg.getEndpoint());
                e.put("id", reg.getId());
                e.put("expired", expired);
                e.put("replaced", newReg != null);
                emit(event("deregistered", e));
            }
        });

        server.getPresenceService().addListener(new PresenceListener() {
            @Override
            public void onAwake(Registration reg) {
                emit(event("awake", NODES.objectNode().put("endpoint", reg.getEndpoint())));
            }

            @Override
            public void onSleeping(Registration reg) {
                emit(event("sleeping", NODES.objectNode().put("endpoint", reg.getEndpoint())));
            }
        });

        server.getSendService().addListener(new SendListener() {
            @Override
            public void dataReceived(Registration reg, TimestampedLwM2mNodes data, SendRequest request) {
                ObjectNode e = NODES.objectNode();
                e.put("endpoint", reg.getEndpoint());
                e.put("format", request.getFormat().getName());
                ObjectNode nodes = e.putObject("nodes");
                for (Map.Entry<LwM2mPath, LwM2mNode> n : data.getNodes().entrySet()) {
                    nodes.set(n.getKey().toString(), node(n.getValue()));
                }
                emit(event("send", e));
            }

            @Override
            public void onError(Registration reg, String message, Exception error) {
                ObjectNode e = NODES.objectNode();
                e.put("endpoint", reg == null ? null : reg.getEndpoint());
                e.put("error", message);
                emit(event("send-error", e));
            }
        });

        server.getObservationService().addListener(new ObservationListener() {
            @Override
            public void newObservation(Observation observation, Registration reg) {
            }

            @Override
            public void cancelled(Observation observation) {
            }

            @Override
            public void onResponse(SingleObservation observation, Registration reg, ObserveResponse response) {
                ObjectNode e = NODES.objectNode();
                e.put("endpoint", reg.getEndpoint());
                e.put("path", observation.getPath().toString());
                e.put("code", response.getCode().getName());
                coapDetails(e, response);
                if (response.getCoapResponse() instanceof Response) {
                    Integer seq = ((Response) response.getCoapResponse()).getOptions().getObserve();
                    if (seq != null) e.put("observe", seq);
                }
                e.set("content", node(response.getContent()));
                emit(event("notification", e));
            }

            @Override
            public void onResponse(CompositeObservation observation, Registration reg, ObserveCompositeResponse response) {
                ObjectNode e = NODES.objectNode();
                e.put("endpoint", reg.getEndpoint());
                e.put("code", response.getCode().getName());
                coapDetails(e, response);
                e.set("content", nodes(response.getContent()));
                emit(event("composite-notification", e));
            }

            @Override
            public void onError(Observation observation, Registration reg, Exception error) {
                ObjectNode e = NODES.objectNode();
                e.put("endpoint", reg == null ? null : reg.getEndpoint());
                e.put("path", observation instanceof SingleObservation
                        ? ((SingleObservation) observation).getPath().toString() : null);
                e.put("error", describe(error));
                emit(event("observation-error", e));
            }
        });

        if (trace) {
            for (LwM2mServerEndpoint endpoint : server.getEndpoints()) {
                if (endpoint instanceof CaliforniumServerEndpoint) {
                    String name = endpoint.getProtocol().getUriScheme();
                    ((CaliforniumServerEndpoint) endpoint).getCoapEndpoint().addInterceptor(new Tracer(name));
                }
            }
        }
    }

    void run() throws Exception {
        server.start();
        ObjectNode e = NODES.objectNode();
        for (LwM2mServerEndpoint endpoint : server.getEndpoints()) {
            // the bound address: the port the kernel chose when 0 was asked for
            InetSocketAddress bound = ((CaliforniumServerEndpoint) endpoint).getCoapEndpoint().getAddress();
            e.put("host", bound.getAddress().getHostAddress());
            e.put(endpoint.getProtocol().getUriScheme() + "_port", bound.getPort());
        }
        emit(event("listening", e));

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) continue;
            JsonNode cmd;
            try {
                cmd = JSON.readTree(line);
                if (!cmd.isObject()) throw new IllegalArgumentException("not an object");
            } catch (Exception ex) {
                ObjectNode err = NODES.objectNode();
                err.put("message", "bad command line: " + line);
                emit(event("error", err));
                continue;
            }
            final JsonNode command = cmd;
            workers.execute(() -> emit(answer(command)));
        }
        // stdin closed: stop listening, then leave (daemon threads do not hold the JVM)
        workers.shutdownNow();
        server.destroy();
        OUT.flush();
        System.exit(0);
    }

    // -- commands

    ObjectNode answer(JsonNode cmd) {
        ObjectNode out;
        try {
            out = dispatch(cmd);
        } catch (Exception ex) {
            out = NODES.objectNode();
            out.put("ok", false);
            out.put("error", describe(ex));
            out.put("exception", ex.getClass().getSimpleName());
        }
        ObjectNode answer = NODES.objectNode();
        answer.set("id", cmd.get("id"));
        answer.setAll(out);
        return answer;
    }

    ObjectNode dispatch(JsonNode cmd) throws Exception {
        String op = text(cmd, "op");
        long timeout = cmd.has("timeout") ? (long) (cmd.get("timeout").asDouble() * 1000) : DEFAULT_TIMEOUT_MS;
        switch (op) {
        case "clients": {
            ArrayNode list = NODES.arrayNode();
            for (Iterator<Registration> it = server.getRegistrationService().getAllRegistrations(); it.hasNext();) {
                list.add(registration(it.next()));
            }
            return ok(null).set("content", list);
        }
        case "add-psk": {
            String endpoint = text(cmd, "endpoint");
            byte[] key = Hex.decodeHex(text(cmd, "key").toCharArray());
            security.remove(endpoint, false); // a new key for the same endpoint replaces the old one
            security.add(SecurityInfo.newPreSharedKeyInfo(endpoint, text(cmd, "identity"), key));
            return ok(null);
        }
        case "add-x509": {
            // the client's certificate must chain to a --x509-trust certificate and carry
            // CN = endpoint
            String endpoint = text(cmd, "endpoint");
            security.remove(endpoint, false);
            security.add(SecurityInfo.newX509CertInfo(endpoint));
            return ok(null);
        }
        case "remove-security": {
            // "compromised": Leshan also drops the client's registration and connection
            SecurityInfo removed = security.remove(text(cmd, "endpoint"), true);
            return ok(null).put("removed", removed != null);
        }
        default:
            break;
        }

        String endpoint = text(cmd, "endpoint");
        Registration reg = server.getRegistrationService().getByEndpoint(endpoint);
        if (reg == null) {
            return failure("no registration for endpoint " + endpoint);
        }
        String path = text(cmd, "path");
        ContentFormat format = cmd.hasNonNull("format") ? contentFormat(cmd.get("format").asText()) : null;
        switch (op) {
        case "read": {
            ReadResponse r = send(reg, new ReadRequest(format, path), timeout);
            return r == null ? timedOut(timeout) : withContent(response(r), r.getContent());
        }
        case "observe": {
            ObserveResponse r = send(reg, new ObserveRequest(format, path), timeout);
            return r == null ? timedOut(timeout) : withContent(response(r), r.getContent());
        }
        case "cancel-observe": {
            LwM2mPath target = new LwM2mPath(path);
            if (!cmd.path("active").asBoolean(false)) {
                int n = server.getObservationService().cancelObservations(reg, path);
                return ok(null).put("cancelled", n);
            }
            for (Observation o : server.getObservationService().getObservations(reg)) {
                if (o instanceof SingleObservation && ((SingleObservation) o).getPath().equals(target)) {
                    ReadResponse r = send(reg, new CancelObservationRequest((SingleObservation) o), timeout);
                    return r == null ? timedOut(timeout) : withContent(response(r), r.getContent());
                }
            }
            return failure("no observation of " + path);
        }
        case "read-composite": {
            // "paths": [..]; "format" the request's (SENML_JSON or SENML_CBOR), "response_format"
            // the answer's (default the same); path "/"
            List<String> paths = new ArrayList<>();
            for (JsonNode p : cmd.path("paths")) paths.add(p.asText());
            ContentFormat answer = cmd.hasNonNull("response_format") ? contentFormat(cmd.get("response_format").asText()) : format;
            ReadCompositeResponse r = send(reg, new ReadCompositeRequest(format, answer, paths), timeout);
            if (r == null) return timedOut(timeout);
            ObjectNode out = response(r);
            if (r.getContent() != null) out.set("content", nodes(r.getContent()));
            return out;
        }
        case "observe-composite": {
            // as read-composite, then the notifications come as "composite-notification" events
            List<String> paths = new ArrayList<>();
            for (JsonNode p : cmd.path("paths")) paths.add(p.asText());
            ObserveCompositeResponse r = send(reg, new ObserveCompositeRequest(format, format, paths.toArray(new String[0])), timeout);
            if (r == null) return timedOut(timeout);
            ObjectNode out = response(r);
            if (r.getContent() != null) out.set("content", nodes(r.getContent()));
            return out;
        }
        case "write-composite": {
            // "values": {path: value}, typed by the JSON value (text, integer, float, boolean); path "/"
            Map<String, Object> values = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = cmd.path("values").fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> e = it.next();
                JsonNode v = e.getValue();
                values.put(e.getKey(), v.isTextual() ? (Object) v.asText() : v.isBoolean() ? (Object) v.booleanValue()
                        : v.isIntegralNumber() ? (Object) v.longValue() : (Object) v.doubleValue());
            }
            LwM2mResponse r = send(reg, new WriteCompositeRequest(format, values), timeout);
            return r == null ? timedOut(timeout) : response(r);
        }
        case "write": {
            WriteRequest request = writeRequest(reg, cmd, format, path);
            LwM2mResponse r = send(reg, request, timeout);
            return r == null ? timedOut(timeout) : response(r);
        }
        case "create": {
            // One instance of the object at path: "instance" its id, "resources" {rid: value}
            // typed by the client's object model.
            LwM2mModel model = server.getModelProvider().getObjectModel(reg);
            int oid = new LwM2mPath(path).getObjectId();
            List<LwM2mResource> resources = new ArrayList<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = cmd.path("resources").fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> e = it.next();
                int rid = Integer.parseInt(e.getKey());
                ResourceModel.Type type = model.getResourceModel(oid, rid).type;
                resources.add(LwM2mSingleResource.newResource(rid, javaValue(type, e.getValue()), type));
            }
            LwM2mObjectInstance instance = new LwM2mObjectInstance(cmd.get("instance").asInt(), resources);
            LwM2mResponse r = send(reg, new CreateRequest(format, path, instance), timeout);
            return r == null ? timedOut(timeout) : response(r);
        }
        case "delete": {
            LwM2mResponse r = send(reg, new DeleteRequest(path), timeout);
            return r == null ? timedOut(timeout) : response(r);
        }
        case "execute": {
            String args = cmd.hasNonNull("args") ? cmd.get("args").asText() : null;
            LwM2mResponse r = send(reg, new ExecuteRequest(path, args), timeout);
            return r == null ? timedOut(timeout) : response(r);
        }
        case "discover": {
            DiscoverResponse r = send(reg, new DiscoverRequest(path), timeout);
            if (r == null) return timedOut(timeout);
            ObjectNode out = response(r);
            if (r.isSuccess()) {
                out.set("content", linkContent(r.getObjectLinks()));
            }
            return out;
        }
        case "write-attributes": {
            // Leshan's own parser builds the set from query parameters: "pmin=10", or a bare
            // "gt" to remove one.
            List<String> params = new ArrayList<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = cmd.path("attributes").fields(); it.hasNext();) {
                Map.Entry<String, JsonNode> a = it.next();
                params.add(a.getValue().isNull() ? a.getKey() : a.getKey() + "=" + a.getValue().asText());
            }
            LwM2mAttributeSet attributes = new LwM2mAttributeSet(new DefaultLwM2mAttributeParser().parseQueryParams(params));
            LwM2mResponse r = send(reg, new WriteAttributesRequest(path, attributes), timeout);
            return r == null ? timedOut(timeout) : response(r);
        }
        default:
            return failure("unknown op " + op);
        }
    }

    <T extends LwM2mResponse> T send(Registration reg, DownlinkRequest<T> request, long timeoutMs) throws InterruptedException {
        // null when the client did not answer in time (Leshan then cancels the request)
        return server.send(reg, request, timeoutMs);
    }

    WriteRequest writeRequest(Registration reg, JsonNode cmd, ContentFormat format, String path) throws Exception {
        LwM2mPath target = new LwM2mPath(path);
        if (!target.isResource() && !target.isResourceInstance()) {
            throw new IllegalArgumentException("write takes a resource or a resource instance, got " + path);
        }
        ResourceModel.Type type;
        if (cmd.hasNonNull("type")) {
            type = ResourceModel.Type.valueOf(cmd.get("type").asText().toUpperCase());
        } else {
            LwM2mModel model = server.getModelProvider().getObjectModel(reg);
            ResourceModel rm = model.getResourceModel(target.getObjectId(), target.getResourceId());
            if (rm == null) {
                throw new IllegalArgumentException("no model of " + path + " for this client: give \"type\"");
            }
            type = rm.type;
        }
        Object value = cmd.hasNonNull("file") && type == ResourceModel.Type.OPAQUE
                ? Files.readAllBytes(new File(cmd.get("file").asText()).toPath()) : javaValue(type, cmd.get("value"));
        LwM2mNode node = target.isResource() ? LwM2mSingleResource.newResource(target.getResourceId(), value, type)
                : LwM2mResourceInstance.newInstance(target.getResourceInstanceId(), value, type);
        return new WriteRequest(WriteRequest.Mode.REPLACE, format, target, node);
    }

    // -- JSON out

    static ObjectNode ok(String code) {
        ObjectNode out = NODES.objectNode();
        out.put("ok", true);
        if (code != null) out.put("code", code);
        return out;
    }

    static ObjectNode failure(String message) {
        ObjectNode out = NODES.objectNode();
        out.put("ok", false);
        out.put("error", message);
        return out;
    }

    static ObjectNode timedOut(long timeoutMs) {
        return failure("timeout: no answer within " + (timeoutMs / 1000.0) + " s");
    }

    static ObjectNode response(LwM2mResponse r) {
        ObjectNode out = NODES.objectNode();
        out.put("ok", r.isSuccess());
        out.put("code", r.getCode().getName());
        if (r.isFailure()) out.put("error", r.getErrorMessage());
        coapDetails(out, r);
        return out;
    }

    static ObjectNode nodes(Map<LwM2mPath, LwM2mNode> content) {
        // {path: node} of a composite answer; a path the client left out is null
        ObjectNode out = NODES.objectNode();
        for (Map.Entry<LwM2mPath, LwM2mNode> e : content.entrySet()) {
            if (e.getValue() != null) out.set(e.getKey().toString(), node(e.getValue()));
            else out.putNull(e.getKey().toString());
        }
        return out;
    }

    static ObjectNode withContent(ObjectNode out, LwM2mNode content) {
        if (content != null) out.set("content", node(content));
        return out;
    }

    static void coapDetails(ObjectNode out, LwM2mResponse r) {
        // the CoAP code and the content format the client actually answered with
        int code = r.getCode().getCode();
        out.put("coap", String.format("%d.%02d", code / 100, code % 100));
        if (r.getCoapResponse() instanceof Response) {
            Response coap = (Response) r.getCoapResponse();
            if (coap.getOptions().hasContentFormat()) {
                int ct = coap.getOptions().getContentFormat();
                out.put("ct", ct);
                out.put("format", ContentFormat.fromCode(ct).getName());
            }
        }
    }

    static ObjectNode event(String name, ObjectNode fields) {
        ObjectNode e = NODES.objectNode();
        e.put("event", name);
        e.setAll(fields);
        return e;
    }

    static void emit(JsonNode obj) {
        String line;
        try {
            line = JSON.writeValueAsString(obj);
        } catch (Exception ex) {
            line = "{\"event\":\"error\",\"message\":" + NODES.textNode(describe(ex)) + "}";
        }
        synchronized (OUT) {
            OUT.println(line);
            OUT.flush();
        }
    }

    static ObjectNode registration(Registration reg) {
        ObjectNode e = NODES.objectNode();
        e.put("endpoint", reg.getEndpoint());
        e.put("id", reg.getId());
        e.put("lifetime", reg.getLifeTimeInSec());
        e.put("binding", bindingText(reg.getBindingMode()));
        e.put("version", reg.getLwM2mVersion().toString());
        e.put("links", links(reg.getObjectLinks()));
        ObjectNode objects = e.putObject("objects");
        for (Map.Entry<Integer, ? extends Object> o : new java.util.TreeMap<>(reg.getSupportedObject()).entrySet()) {
            objects.put(String.valueOf(o.getKey()), o.getValue().toString());
        }
        e.put("root", reg.getRootPath());
        e.put("address", reg.getAddress().getHostAddress());
        e.put("port", reg.getPort());
        LwM2mPeer peer = reg.getClientTransportData();
        LwM2mIdentity identity = peer.getIdentity();
        e.put("secure", identity != null && identity.isSecure());
        if (identity instanceof PskIdentity) {
            e.put("identity", ((PskIdentity) identity).getPskIdentity());
            e.put("identity_type", "psk");
        } else if (identity instanceof X509Identity) {
            e.put("identity", ((X509Identity) identity).getX509CommonName());
            e.put("identity_type", "x509");
        } else if (identity instanceof RpkIdentity) {
            e.put("identity", Hex.encodeHexString(((RpkIdentity) identity).getPublicKey().getEncoded()).toLowerCase());
            e.put("identity_type", "rpk");
        } else {
            e.putNull("identity");
            e.put("identity_type", identity != null && identity.isSecure() ? "oscore" : null);
        }
        e.put("transport", reg.getLastEndpointUsed() == null ? null : reg.getLastEndpointUsed().getScheme());
        e.put("queue", reg.usesQueueMode());
        e.put("sms", reg.getSmsNumber());
        ObjectNode attrs = e.putObject("attributes");
        for (Map.Entry<String, String> a : reg.getAdditionalRegistrationAttributes().entrySet()) {
            attrs.put(a.getKey(), a.getValue());
        }
        return e;
    }

    static String bindingText(Set<?> binding) {
        StringBuilder b = new StringBuilder();
        for (Object m : binding) b.append(m);
        return b.toString();
    }

    static String links(Link[] links) {
        StringBuilder b = new StringBuilder();
        for (Link l : links) {
            if (b.length() > 0) b.append(',');
            b.append(l.toCoreLinkFormat());
        }
        return b.toString();
    }

    static ObjectNode linkContent(Link[] links) {
        // {"links": the CoRE Link Format text, "attributes": {target: {name: value or null}}}
        ObjectNode out = NODES.objectNode();
        out.put("links", links(links));
        ObjectNode byTarget = out.putObject("attributes");
        for (Link l : links) {
            ObjectNode attrs = byTarget.putObject(l.getUriReference());
            for (Attribute a : l.getAttributes()) {
                attrs.put(a.getName(), a.hasValue() ? a.getCoreLinkValue() : null);
            }
        }
        return out;
    }

    static JsonNode node(LwM2mNode n) {
        ObjectNode out = NODES.objectNode();
        if (n instanceof LwM2mObject) {
            LwM2mObject o = (LwM2mObject) n;
            out.put("kind", "object");
            out.put("id", o.getId());
            ObjectNode instances = out.putObject("instances");
            for (LwM2mObjectInstance i : o.getInstances().values()) {
                instances.set(String.valueOf(i.getId()), node(i));
            }
        } else if (n instanceof LwM2mObjectInstance) {
            LwM2mObjectInstance i = (LwM2mObjectInstance) n;
            out.put("kind", "instance");
            out.put("id", i.getId());
            ObjectNode resources = out.putObject("resources");
            ObjectNode types = out.putObject("types");
            for (LwM2mResource r : i.getResources().values()) {
                resources.set(String.valueOf(r.getId()), r.isMultiInstances() ? instances(r) : value(r.getType(), r.getValue()));
                types.put(String.valueOf(r.getId()), r.getType().toString());
            }
        } else if (n instanceof LwM2mMultipleResource) {
            LwM2mResource r = (LwM2mResource) n;
            out.put("kind", "multiple");
            out.put("id", r.getId());
            out.put("type", r.getType().toString());
            out.set("values", instances(r));
        } else if (n instanceof LwM2mSingleResource) {
            LwM2mResource r = (LwM2mResource) n;
            out.put("kind", "resource");
            out.put("id", r.getId());
            out.put("type", r.getType().toString());
            out.set("value", value(r.getType(), r.getValue()));
        } else if (n instanceof LwM2mResourceInstance) {
            LwM2mResourceInstance r = (LwM2mResourceInstance) n;
            out.put("kind", "resource-instance");
            out.put("id", r.getId());
            out.put("type", r.getType().toString());
            out.set("value", value(r.getType(), r.getValue()));
        } else {
            out.put("kind", n == null ? "none" : n.getClass().getSimpleName());
        }
        return out;
    }

    static ObjectNode instances(LwM2mResource r) {
        ObjectNode values = NODES.objectNode();
        for (LwM2mResourceInstance ri : r.getInstances().values()) {
            values.set(String.valueOf(ri.getId()), value(ri.getType(), ri.getValue()));
        }
        return values;
    }

    static JsonNode value(ResourceModel.Type type, Object v) {
        if (v == null) return NODES.nullNode();
        switch (type) {
        case STRING:
            return NODES.textNode((String) v);
        case INTEGER:
            return NODES.numberNode(((Number) v).longValue());
        case UNSIGNED_INTEGER:
            return NODES.numberNode(((ULong) v).toBigInteger());
        case FLOAT:
            return NODES.numberNode(((Number) v).doubleValue());
        case BOOLEAN:
            return NODES.booleanNode((Boolean) v);
        case TIME:
            return NODES.numberNode(((Date) v).getTime() / 1000);
        case OPAQUE:
            return NODES.textNode(Hex.encodeHexString((byte[]) v).toLowerCase());
        case OBJLNK:
            return NODES.textNode(((ObjectLink) v).encodeToString());
        case CORELINK:
            return NODES.textNode(links((Link[]) v));
        default:
            return NODES.textNode(v.toString());
        }
    }

    // -- JSON in

    static Object javaValue(ResourceModel.Type type, JsonNode v) {
        if (v == null || v.isNull()) throw new IllegalArgumentException("write needs a \"value\"");
        switch (type) {
        case STRING:
            return v.asText();
        case INTEGER:
            return v.isNumber() ? v.longValue() : Long.parseLong(v.asText());
        case UNSIGNED_INTEGER:
            return ULong.valueOf(v.isNumber() ? v.bigIntegerValue() : new BigInteger(v.asText()));
        case FLOAT:
            return v.isNumber() ? v.doubleValue() : Double.parseDouble(v.asText());
        case BOOLEAN:
            if (v.isBoolean()) return v.booleanValue();
            if (v.asText().equals("true") || v.asText().equals("false")) return Boolean.parseBoolean(v.asText());
            throw new IllegalArgumentException("not a boolean: " + v);
        case TIME:
            return new Date((v.isNumber() ? v.longValue() : Long.parseLong(v.asText())) * 1000);
        case OPAQUE:
            return Hex.decodeHex(v.asText().toCharArray());
        case OBJLNK:
            return ObjectLink.decodeFromString(v.asText());
        default:
            throw new IllegalArgumentException("cannot write a " + type + " value");
        }
    }

    static ContentFormat contentFormat(String name) {
        // a name Leshan knows (TLV, TEXT, JSON, SENML_JSON, OPAQUE, CBOR, SENML_CBOR, LINK) or a number
        ContentFormat f = name.matches("\\d+") ? ContentFormat.fromCode(Integer.parseInt(name))
                : ContentFormat.fromName(name.toUpperCase());
        if (f == null) throw new IllegalArgumentException("unknown content format " + name);
        return f;
    }

    // -- key material

    static List<X509Certificate> certificates(File file) throws Exception {
        // every certificate of a DER or PEM file (the JDK's parser reads either)
        List<X509Certificate> out = new ArrayList<>();
        try (java.io.InputStream in = new ByteArrayInputStream(Files.readAllBytes(file.toPath()))) {
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                out.add((X509Certificate) c);
            }
        }
        if (out.isEmpty()) throw new IllegalArgumentException("no certificate in " + file);
        return out;
    }

    static PrivateKey privateKey(File file) throws Exception {
        // DER or PEM, PKCS#8 or SEC1 (RFC 5915)
        byte[] data = Files.readAllBytes(file.toPath());
        if (new String(data, 0, Math.min(data.length, 64), StandardCharsets.US_ASCII).contains("-----BEGIN")) {
            PemReader pem = new PemReader(new ByteArrayInputStream(data));
            try {
                String tag;
                data = null;
                while ((tag = pem.readNextBegin()) != null) {
                    if (tag.contains("PRIVATE KEY")) {
                        data = pem.readToEnd();
                        break;
                    }
                }
            } finally {
                pem.close();
            }
            if (data == null) throw new IllegalArgumentException("no PRIVATE KEY block in " + file);
        }
        PrivateKey key = Asn1DerDecoder.readPrivateKey(data).getPrivateKey();
        if (key == null) throw new IllegalArgumentException("no private key in " + file);
        return key;
    }

    static String text(JsonNode cmd, String field) {
        JsonNode v = cmd.get(field);
        if (v == null || v.isNull()) throw new IllegalArgumentException("missing \"" + field + "\"");
        return v.asText();
    }

    static String describe(Throwable ex) {
        // the message and its causes: an interop failure is usually explained by the innermost one
        StringBuilder b = new StringBuilder();
        for (Throwable t = ex; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (b.length() > 0) b.append(" <- ");
            b.append(t.getClass().getSimpleName());
            if (t.getMessage() != null) b.append(": ").append(t.getMessage());
        }
        return b.toString();
    }

    // Prints each CoAP message an endpoint sends or receives to stderr (--trace).
    static class Tracer implements MessageInterceptor {
        final String name;

        Tracer(String name) {
            this.name = name;
        }

        void log(String direction, Object message) {
            System.err.println(name + " " + direction + " " + message);
        }

        @Override
        public void sendRequest(Request request) {
            log("->", request);
        }

        @Override
        public void sendResponse(Response response) {
            log("->", response);
        }

        @Override
        public void sendEmptyMessage(EmptyMessage message) {
            log("->", message);
        }

        @Override
        public void receiveRequest(Request request) {
            log("<-", request);
        }

        @Override
        public void receiveResponse(Response response) {
            log("<-", response);
        }

        @Override
        public void receiveEmptyMessage(EmptyMessage message) {
            log("<-", message);
        }
    }
}
