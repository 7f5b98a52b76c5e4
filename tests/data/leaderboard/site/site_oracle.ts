// Oracle only (never shipped): runs the site's own hook and regression over runs.json/tracks.json.
import { readFileSync } from "fs";
import { useSpeedrunData } from "./website/src/hooks/useSpeedrunData";
import { computePowerLawWithOffset } from "./website/src/utils/regression";

const runsPath = process.argv[2] ?? "data/runs.json";
const tracksPath = process.argv[3] ?? "data/tracks.json";
const runs = JSON.parse(readFileSync(runsPath, "utf8"));
const tracks = JSON.parse(readFileSync(tracksPath, "utf8"));

// Each board's runs, picked by the rule App.tsx applies (every track of tracks.json kept, not only the two
// tabs the deployed site shows): all runs; runs with a folder for "scaling"; else the target band.
function boardRuns(trackId: string) {
  const track = tracks.find((t: any) => t.id === trackId);
  if (trackId === "all") return runs;
  if (trackId === "scaling") return runs.filter((run: any) => run.run_name.includes("/"));
  if (!track?.target_bpb) return runs;
  const targets = tracks
    .filter((t: any) => t.id !== "all" && t.target_bpb)
    .map((t: any) => ({ id: t.id, target: t.target_bpb }))
    .sort((p: any, q: any) => q.target - p.target);
  const position = targets.findIndex((t: any) => t.id === trackId);
  const below = position + 1 < targets.length ? targets[position + 1].target : 0;
  return runs.filter((run: any) => {
    const bpb = run.eval_paloma_c4_en_bpb;
    return bpb !== null && bpb > below && bpb <= track.target_bpb;
  });
}

const out: any = {};
for (const xAxis of ["model_flops", "training_hardware_flops"] as const) {
  const perAxis: any = {};
  const baselinePts = runs.filter((r: any) => r.run_name.toLowerCase().includes("adamw_llama_scaling"))
    .map((r: any) => ({ x: r[xAxis], y: r.eval_paloma_c4_en_bpb }))
    .filter((p: any) => p.x > 0 && p.y > 0).sort((a: any, b: any) => a.x - b.x);
  perAxis.baseline = computePowerLawWithOffset(baselinePts);
  for (const track of tracks) {
    const filteredRuns = boardRuns(track.id);
    const res: any = {};
    for (const yAxis of ["absolute", "relative"] as const) {
      const r = useSpeedrunData({ runs, filteredRuns, trackId: track.id, currentTrack: track, tracks, xAxis, yAxis });
      if (yAxis === "absolute") {
        res.nextLower = r.nextLower;
        res.rows = r.leaderboardRows;
        if (r.chartData.type === "scaling") {
          res.groups = r.chartData.groups.map((g) => ({ name: g.name, forecast: g.forecastedBpbAt1e22 }));
          res.top3 = [...r.chartData.top3Groups];
        } else {
          res.pareto = r.chartData.pareto.map((p) => p.name);
        }
      } else {
        if (r.chartData.type === "scaling") {
          res.relative = r.chartData.background.map((p) => [p.name, p.y]);
          res.relativeLines = r.chartData.groups.map((g) => [g.name, g.regression[0], g.regression[g.regression.length - 1]]);
        } else {
          res.relative = r.chartData.all.map((p) => [p.name, p.y]);
        }
      }
    }
    perAxis[track.id] = res;
  }
  out[xAxis] = perAxis;
}
console.log(JSON.stringify(out, null, 1));
