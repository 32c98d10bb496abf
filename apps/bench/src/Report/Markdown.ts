/** The report as Markdown tables: one per scenario, backends beside their floor, medians with their spread. */
import type { Report } from "../Report.js"
import type { Figure } from "../Results.js"
import { mib, num, ratio, spread } from "./Format.js"

const floorLabel: Record<string, string> = { fs: "floor: Node fs copy", tar: "floor: tar -xf" }
const label = (target: string) => floorLabel[target] ?? target

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) =>
  [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")

export const render = (report: Report): string => {
  const byScenario = (scenario: string) => report.figures.filter((f) => f.scenario === scenario)
  // Backends in the order asked for, then the floors.
  const order = [...report.settings.backends, "fs", "tar"]
  const backendsFirst = (figs: ReadonlyArray<Figure>) =>
    [...figs].sort((a, b) => order.indexOf(a.target) - order.indexOf(b.target))
  const s = report.settings
  const out: Array<string> = []
  out.push(
    `Corpus: ${num(report.corpus.files)} files, ${
      mib(report.corpus.bytes)
    } (\`--corpus ${report.corpus.spec} --seed ${report.seed}\`, ` +
      `digest \`${report.corpus.digest.slice(0, 16)}\`). ${s.runs} run${
        s.runs === 1 ? "" : "s"
      } after ${s.warmup} warm-up; ` +
      `each cell is the median over runs with (min–max); × is the paired ratio to the floor measured next to each run.`,
    `Machine: ${report.machine.cpus} × ${report.machine.cpu_model}, ${report.machine.memory_gib} GiB, ${report.machine.os}; ` +
      `node ${report.versions["node"]}, effect ${report.versions["effect"]}.`,
    ""
  )

  const store = backendsFirst(byScenario("store"))
  if (store.length > 0) {
    out.push("**Store** (whole corpus, one call)", "")
    out.push(
      table(
        ["target", "time (s)", "MiB/s", "files/s", "× fs copy", "zstd ratio"],
        store.map((f) => [
          label(f.target),
          spread(f.values["seconds"]),
          spread(f.values["mib_s"]),
          spread(f.values["files_s"]),
          ratio(f.ratios["fs"]?.["seconds"]),
          f.core["compression_ratio"] ? `${num(f.core["compression_ratio"].median)}×` : ""
        ])
      ),
      ""
    )
  }

  const latency = [...backendsFirst(byScenario("restore-small")), ...backendsFirst(byScenario("restore-large"))]
  if (latency.length > 0) {
    out.push(
      `**Single restore latency** (ms; ${s.latency_files.small} small files of 1–32 KiB, the ${s.latency_files.large} largest files of ≥ 1 MiB; \`Restorer.restore\` one at a time)`,
      ""
    )
    out.push(
      table(
        ["target", "files", "p50", "p95", "p99", "max", "p50 × fs", "p99 × fs"],
        latency.map((f) => [
          label(f.target),
          f.scenario === "restore-small" ? "small" : "large",
          spread(f.values["p50_ms"]),
          spread(f.values["p95_ms"]),
          spread(f.values["p99_ms"]),
          spread(f.values["max_ms"]),
          ratio(f.ratios["fs"]?.["p50_ms"]),
          ratio(f.ratios["fs"]?.["p99_ms"])
        ])
      ),
      ""
    )
  }

  const phased = latency.filter((f) => f.core["mean_ms"] !== undefined)
  if (phased.length > 0) {
    out.push(
      "**Where a single restore's time goes** (ms, mean per file from the core's restore histograms, median over runs)",
      ""
    )
    const phases = ["mean_ms", "fetch_ms", "decompress_ms", "verify_ms", "write_ms", "record_ms"]
    out.push(
      table(
        ["target", "files", "total", "fetch", "decompress", "verify", "write", "record"],
        phased.map((f) => [
          f.target,
          f.scenario === "restore-small" ? "small" : "large",
          ...phases.map((k) => num(f.core[k]?.median ?? Number.NaN))
        ])
      ),
      ""
    )
  }

  const levels = s.concurrency
  const batch = (c: number) => report.figures.filter((f) => f.scenario === `batch-c${c}`)
  const batchTargets = [...new Set(levels.flatMap((c) => backendsFirst(batch(c)).map((f) => f.target)))]
  if (batchTargets.length > 0) {
    out.push(
      "**Batch restore throughput** (whole corpus, `restoreAll`; MiB/s at each concurrency; floors measured once per run beside the levels)",
      ""
    )
    const find = (c: number, target: string) => batch(c).find((f) => f.target === target)
    out.push(
      table(
        [
          "target",
          ...levels.map((c) => `c=${c}`),
          ...levels.map((c) => `× fs, c=${c}`),
          ...(s.tar
            ? levels.map((c) => `× tar, c=${c}`)
            : [])
        ],
        batchTargets.map((target) => {
          const floor = target in floorLabel
          return [
            label(target),
            ...levels.map((c) => spread(find(c, target)?.values["mib_s"])),
            ...levels.map((c) => (floor ? "" : ratio(find(c, target)?.ratios["fs"]?.["seconds"]))),
            ...(s.tar ? levels.map((c) => (floor ? "" : ratio(find(c, target)?.ratios["tar"]?.["seconds"]))) : [])
          ]
        })
      ),
      ""
    )
  }

  const cli = backendsFirst(byScenario("cli-cold"))
  if (cli.length > 0) {
    out.push(
      `**Cold CLI restore** (ms from process start to exit, one small file, ${s.cli_invocations} per run; floor: \`node -e copyFileSync\`)`,
      ""
    )
    out.push(
      table(
        ["target", "p50", "max", "p50 × floor"],
        cli.map((f) => [
          f.target === "fs" ? "floor: node fs copy" : `\`codex archive restore\` on ${f.target}`,
          spread(f.values["p50_ms"]),
          spread(f.values["max_ms"]),
          ratio(f.ratios["fs"]?.["p50_ms"])
        ])
      ),
      ""
    )
  }

  if (report.unavailable.length > 0 || report.failures.length > 0) {
    out.push("**Not measured**", "")
    for (const u of report.unavailable) {
      const measured = report.samples.filter((x) => x.scenario === u.scenario && x.target === u.target).length
      const first = !Number.isInteger(u.run) ? "" : u.run < 0 ? "in the warm-up; " : `in run ${u.run + 1}; `
      const when = u.scenario === "*" || measured === 0 ? "" : ` (${first}measured in ${measured} of ${s.runs} runs)`
      out.push(`- ${u.target}${u.scenario === "*" ? "" : ` ${u.scenario}`}${when}: ${u.reason}`)
    }
    for (const f of report.failures) out.push(`- failed: ${f}`)
    out.push("")
  }
  return out.join("\n")
}
