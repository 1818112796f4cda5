// Playground "equivariance": being built (issue 14).
import { el } from "./common.js";

export async function init(section) {
  section.append(el("h2", { text: "Playground \"equivariance\": being built" }));
}
