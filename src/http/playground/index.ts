// GET /: the playground, one static page (no build step) embedded in the server and the binary.
import { Elysia } from "elysia";
import html from "./page.html" with { type: "text" };

/** (the type says HTMLBundle; imported `with { type: "text" }` it is the file's text) */
const page = html as unknown as string;

export const playgroundRoutes = () =>
  new Elysia({ name: "playground" }).get(
    "/",
    () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache", "x-content-type-options": "nosniff" } }),
    { detail: { summary: "The playground page" } },
  );
