export interface Confusion {
  /** Spam is the positive class. */
  truePositive: number;
  falsePositive: number;
  trueNegative: number;
  falseNegative: number;
}

export interface GroupMetrics {
  count: number;
  errors: number;
  accuracy: number;
}

export interface BinaryMetrics {
  count: number;
  accuracy: number;
  /** Area under the ROC curve from ranks (Mann-Whitney U), ties counted half. */
  auc: number;
  logLoss: number;
  precision: number;
  recall: number;
  confusion: Confusion;
  byGroup: Record<string, GroupMetrics>;
}

export interface Scored {
  /** 1 for the positive class. */
  label: 0 | 1;
  /** Probability of the positive class. */
  score: number;
  group?: string;
}

export function binaryMetrics(items: readonly Scored[], threshold = 0.5): BinaryMetrics {
  const confusion: Confusion = { truePositive: 0, falsePositive: 0, trueNegative: 0, falseNegative: 0 };
  const byGroup: Record<string, GroupMetrics> = {};
  let logLoss = 0;
  for (const { label, score, group } of items) {
    const predicted = score >= threshold ? 1 : 0;
    if (predicted === 1 && label === 1) confusion.truePositive++;
    else if (predicted === 1) confusion.falsePositive++;
    else if (label === 0) confusion.trueNegative++;
    else confusion.falseNegative++;
    const p = Math.min(Math.max(label === 1 ? score : 1 - score, 1e-12), 1);
    logLoss -= Math.log(p);
    if (group !== undefined) {
      const g = (byGroup[group] ??= { count: 0, errors: 0, accuracy: 0 });
      g.count++;
      if (predicted !== label) g.errors++;
    }
  }
  for (const g of Object.values(byGroup)) g.accuracy = g.count === 0 ? 0 : (g.count - g.errors) / g.count;
  const n = items.length;
  const correct = confusion.truePositive + confusion.trueNegative;
  const predictedPositive = confusion.truePositive + confusion.falsePositive;
  const positives = confusion.truePositive + confusion.falseNegative;
  return {
    count: n,
    accuracy: n === 0 ? 0 : correct / n,
    auc: rocAuc(items),
    logLoss: n === 0 ? 0 : logLoss / n,
    precision: predictedPositive === 0 ? 0 : confusion.truePositive / predictedPositive,
    recall: positives === 0 ? 0 : confusion.truePositive / positives,
    confusion,
    byGroup: Object.fromEntries(Object.entries(byGroup).sort(([a], [b]) => a.localeCompare(b))),
  };
}

/** NaN when one class is absent (the AUC is undefined then). */
export function rocAuc(items: readonly Scored[]): number {
  const sorted = [...items].sort((a, b) => a.score - b.score);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]!.score === sorted[i]!.score) j++;
    // Ranks i+1 .. j share their average.
    const averageRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if (sorted[k]!.label === 1) {
        positives++;
        rankSum += averageRank;
      }
    }
    i = j;
  }
  const negatives = sorted.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}
