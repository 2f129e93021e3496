// Package forecast is Foresight's Predictive Scaler: it turns a group's
// history (a plain series of numbers on a regular time grid) into a point
// forecast and calibrated quantiles for each step of a horizon.
//
// The package follows the style of gonum/stat: models are fitted from a
// series by pure functions and return values that can be asked for
// forecasts; there are no global registries and no goroutines inside the
// maths. Timestamps come from the inputs only; nothing here reads the wall
// clock.
//
// What Fit does, in order:
//
//  1. clean: gaps are filled by linear interpolation; the season is
//     detected (step 2); in a series without one, lasting level shifts
//     (levelShifts) are removed by moving the older history to the newest
//     level; outliers (cleanOutliers: isolated spikes inside the series,
//     and at its end only where the series' jumps do not last) are
//     replaced for fitting. Candidates are scored on that cleaned series
//     and the quantiles are calibrated on the series as given, so spikes
//     and shifts still widen them at the rate they happen;
//  2. season: candidate periods from the periodogram (dsp/fourier, on a
//     fast transform length), confirmed by the autocorrelation at that lag,
//     harmonics resolved (DetectSeason); no confirmed period means
//     non-seasonal models only;
//  3. candidates: naive, seasonal naive, seasonal profile, ETS (additive
//     error; none or damped trend; none, additive or multiplicative season;
//     smoothing parameters fitted by Nelder-Mead on the one-step squared
//     error from the best point of a coarse grid, variant chosen by AICc),
//     ARIMA(p,1,0) and a mean-reverting AR(p) (order by AIC from
//     Yule-Walker), and a daily plus weekly Fourier regression with a trend
//     and an AR(1) correction. Every candidate can forecast from any origin
//     of its window;
//  4. selection with a guard (guardSelect): every candidate forecasts from
//     up to 400 rolling origins spread over the window. For each block of
//     horizon steps (1, 2, 3–4, 5–8, …) the loss of a candidate is its mean
//     absolute error against the series without its outliers (a spike no
//     model could foresee does not decide) with recent origins weighing
//     more. ETS is the default; the best three candidates are combined
//     with weights ∝ 1/loss², and the combination gets a share of the
//     forecast only if it beats the default by a margin (all of it at twice
//     the margin). Fitted.Blocks and Fitted.Reason say what the guard did;
//  5. quantiles: split-conformal per horizon step, from the out-of-sample
//     errors of the chosen forecaster at the same origins; a tail moves
//     half-way towards the newest third's when that is wider (volatility
//     drifts), and offsets are made monotone in the horizon (uncertainty
//     does not shrink with lead time);
//  6. events (Predict): named calendar windows shift the forecast by a
//     stated effect or one learned from earlier windows of the same name.
//
// The constants of steps 1 and 4 (Tuning) were chosen leaving one source
// of traces out at a time (`foresight forecast eval -loso`), not on the
// series they are judged on.
//
// A Fitted forecaster takes new points with Append in O(1) per point
// (states are advanced, nothing is refitted), so a leader holding thousands
// of series refits each only on its own schedule.
//
// EvaluateSeries and Summarise implement the rolling-origin protocol of
// shared/data/BASELINES.md, which `foresight forecast eval` prints.
package forecast
