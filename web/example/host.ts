// The example host page's script: asks its own backend (the example server) for a reveal session, embeds the
// reveal page in an iframe styled to match, and lists the events the frame posts — accepted only from
// cardvault's origin and from that very frame. It never sees card data: the frame is another origin.
interface MintedSession {
  url: string;
  cardvaultOrigin: string;
}

const frameBox = document.getElementById("frame")!;
const events = document.getElementById("events")!;
const withPin = document.getElementById("with-pin") as HTMLInputElement;
let frame: HTMLIFrameElement | undefined;
let cardvaultOrigin = "";

window.addEventListener("message", (event: MessageEvent) => {
  if (event.origin !== cardvaultOrigin || !frame || event.source !== frame.contentWindow) return;
  const data = event.data as { source?: string; type?: string };
  if (data?.source !== "cardvault-reveal") return;
  const item = document.createElement("li");
  item.textContent = JSON.stringify(data);
  item.dataset.event = JSON.stringify({ ...data, origin: event.origin });
  events.append(item);
});

async function show(): Promise<void> {
  const fields = ["pan", "expiry", "cvv", ...(withPin.checked ? ["pin"] : [])];
  const response = await fetch("/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ fields }),
  });
  if (!response.ok) throw new Error(`the example backend answered ${response.status}`);
  const session = (await response.json()) as MintedSession;
  cardvaultOrigin = session.cardvaultOrigin;
  const url = new URL(session.url);
  // Match the frame to this page: fonts the device has and colours, through the page's query parameters.
  url.searchParams.set("font", 'Georgia, "DejaVu Serif", serif');
  url.searchParams.set("accent", "#0f766e");
  url.searchParams.set("color", "#1f2937");
  url.searchParams.set("radius", "14");
  frame?.remove();
  frame = document.createElement("iframe");
  frame.title = "Card details";
  frame.allow = "clipboard-write";
  frame.src = url.toString();
  frameBox.append(frame);
}

document.getElementById("show")!.addEventListener("click", () => {
  show().catch((error: unknown) => {
    const item = document.createElement("li");
    item.textContent = `host error: ${String(error)}`;
    events.append(item);
  });
});
