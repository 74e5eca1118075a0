/**
 * What a live widget is, as a notebook output carries it: a MIME type of the course's own with
 * the widget's kind and settings, beside a `text/html` part with the same view computed when the
 * notebook ran. Jupyter shows the HTML; the course site (lib/tools/course/render.ts) writes both
 * into the page, and the browser bundle (lib/widgets/browser/) brings the widget to life there.
 *
 * Models are named by their artifact ("pretrained", "base", "sft", "reward", "ppo", "dpo"): the
 * site build exports each named one once (lib/tools/course/widgetAssets.ts) and pages load it
 * from assets/models/<name>.js.
 */
import type { TokenizerJSON } from "../tokens/tokenizer";

export const WIDGET_MIME = "application/vnd.llm-course.widget+json";

/** The models a widget may name, with what the site build exports for each. */
export const WIDGET_MODELS = ["pretrained", "base", "sft", "reward", "ppo", "dpo", "grpo"] as const;
export type WidgetModelName = (typeof WIDGET_MODELS)[number];

/** A question with the data set's reference answer (the labeller's "correct" needs it). */
export interface WidgetQuestion {
  prompt: string;
  reference?: string;
  id?: string;
}

export interface TokenizersWidget {
  kind: "tokenizers";
  text: string;
  /** Each tokenizer's JSON form; `{type: "gpt2"}` is GPT-2's, whose merges the site ships once (assets/models/gpt2-tokenizer.js). */
  tokenizers: { label: string; json: TokenizerJSON }[];
}

export interface AttentionWidget {
  kind: "attention";
  model: WidgetModelName;
  text: string;
}

export interface SamplerWidget {
  kind: "sampler";
  model: WidgetModelName;
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
}

export interface AnswersWidget {
  kind: "answers";
  models: { label: string; model: WidgetModelName }[];
  reward: WidgetModelName;
  questions: WidgetQuestion[];
  maxNewTokens: number;
  temperature: number;
  seed: number;
}

export interface RankingWidget {
  kind: "ranking";
  model: WidgetModelName;
  questions: WidgetQuestion[];
  /** Answers sampled per question to rank. */
  k: number;
  maxNewTokens: number;
  temperature: number;
  seed: number;
}

export type WidgetSpec = TokenizersWidget | AttentionWidget | SamplerWidget | AnswersWidget | RankingWidget;

/** The models a widget loads. */
export function widgetModels(spec: WidgetSpec): WidgetModelName[] {
  switch (spec.kind) {
    case "tokenizers":
      return [];
    case "attention":
    case "sampler":
    case "ranking":
      return [spec.model];
    case "answers":
      return [...spec.models.map((m) => m.model), spec.reward];
  }
}

/** The fields each kind needs, and what each must be (checked where a page reads a notebook's widget). */
const FIELDS: Record<WidgetSpec["kind"], Record<string, "string" | "number" | "list">> = {
  tokenizers: { text: "string", tokenizers: "list" },
  attention: { model: "string", text: "string" },
  sampler: { model: "string", prompt: "string", maxNewTokens: "number", temperature: "number", topK: "number", topP: "number", seed: "number" },
  answers: { models: "list", reward: "string", questions: "list", maxNewTokens: "number", temperature: "number", seed: "number" },
  ranking: { model: "string", questions: "list", k: "number", maxNewTokens: "number", temperature: "number", seed: "number" },
};

/** Check a widget spec read from a notebook; one line naming the field at fault. */
export function validateWidgetSpec(value: unknown, where: string): WidgetSpec {
  const v = value as Record<string, unknown>;
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${where}: a widget must be an object {kind, …}`);
  const kinds = Object.keys(FIELDS);
  if (!kinds.includes(v.kind as string)) throw new Error(`${where}: field "kind" must be one of ${kinds.join(", ")}, got ${JSON.stringify(v.kind)}`);
  for (const [field, type] of Object.entries(FIELDS[v.kind as WidgetSpec["kind"]])) {
    const x = v[field];
    const ok = type === "list" ? Array.isArray(x) && x.length > 0 : type === "number" ? typeof x === "number" && Number.isFinite(x) : typeof x === "string";
    if (!ok) throw new Error(`${where}: field "${field}" of a ${v.kind} widget must be ${type === "list" ? "a non-empty list" : `a ${type}`}, got ${JSON.stringify(x)}`);
  }
  const spec = v as unknown as WidgetSpec;
  for (const m of widgetModels(spec)) {
    if (!(WIDGET_MODELS as readonly string[]).includes(m)) throw new Error(`${where}: model ${JSON.stringify(m)} must be one of ${WIDGET_MODELS.join(", ")}`);
  }
  return spec;
}
