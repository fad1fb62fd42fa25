// PostGraphile v5 serving the Santana tables, as the benchmark's peer.
// Same database, same non-superuser role (RLS in force), same HS256 access
// tokens: the JWT's clinic becomes `app.clinic_id` for the request's
// transaction, exactly what the gateway sets. One worker per core (node:cluster).
import cluster from "node:cluster";
import { createServer } from "node:http";
import { availableParallelism } from "node:os";
import jwt from "jsonwebtoken";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const { DATABASE_URL, JWT_SECRET, PORT = "18001", HOST = "127.0.0.1", WORKERS, POOL_SIZE = "10" } = process.env;
const workers = Number(WORKERS || availableParallelism());

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on("exit", (w, code) => console.error(`worker ${w.process.pid} exited ${code}`));
} else {
  const preset = {
    extends: [PostGraphileAmberPreset],
    pgServices: [
      makePgService({
        connectionString: DATABASE_URL,
        schemas: ["public"],
        poolConfig: { max: Number(POOL_SIZE) },
      }),
    ],
    grafserv: { port: Number(PORT), host: HOST, graphiql: false, watch: false },
    grafast: {
      explain: false,
      context(requestContext) {
        const header = requestContext.node?.req?.headers?.authorization ?? "";
        const token = header.startsWith("Bearer ") ? header.slice(7) : null;
        if (!token) return { pgSettings: { "app.clinic_id": "", "app.scope": "tenant" } };
        // Throws (-> GraphQL error) on a bad or expired token, as the gateway refuses it.
        const claims = jwt.verify(token, JWT_SECRET, { algorithms: ["HS256"], issuer: "santana" });
        return { pgSettings: { "app.clinic_id": claims.clinic ?? "", "app.scope": "tenant" } };
      },
    },
  };
  const pgl = postgraphile(preset);
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  server.on("error", (e) => { console.error(e); process.exit(1); });
  await serv.addTo(server);
  server.listen(Number(PORT), HOST, () => console.error(`postgraphile worker ${process.pid} on ${HOST}:${PORT}`));
}
