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
//  1. clean: gaps are filled by linear interpolation; rare isolated spikes
//     (Despike) are set aside for fitting, but forecasts are still judged
//     against the series as given;
//  2. season: candidate periods from the periodogram (dsp/fourier, on a
//     fast transform length), confirmed by the autocorrelation at that lag,
//     harmonics resolved (DetectSeason); no confirmed period means
//     non-seasonal models only;
//  3. candidates: naive, seasonal naive, seasonal profile, ETS (additive
//     error; none or damped trend; none, additive or multiplicative season;
//     smoothing parameters fitted by Nelder-Mead on the one-step squared
//     error, variant chosen by AICc), ARIMA(p,1,0) and a mean-reverting
//     AR(p) (order by AIC from Yule-Walker), and a daily plus weekly Fourier
//     regression with a trend and an AR(1) correction. Every candidate can
//     forecast from any origin of its window;
//  4. selection: each candidate, and the means of the best two and three,
//     forecast from up to 400 rolling origins spread over the window; for
//     each block of horizon steps (1, 2, 3–4, 5–8, …) the forecaster with
//     the lowest mean absolute error on those origins is kept, because the
//     best model for the next quarter-hour is rarely the best for the next
//     six hours;
//  5. quantiles: split-conformal per horizon step, from the out-of-sample
//     errors of the chosen forecaster at the same origins; a tail moves
//     half-way towards the newest third's when that is wider (volatility
//     drifts), and offsets are made monotone in the horizon (uncertainty
//     does not shrink with lead time);
//  6. events (Predict): named calendar windows shift the forecast by a
//     stated effect or one learned from earlier windows of the same name.
//
// A Fitted forecaster takes new points with Append in O(1) per point
// (states are advanced, nothing is refitted), so a leader holding thousands
// of series refits each only on its own schedule.
//
// EvaluateSeries and Summarise implement the rolling-origin protocol of
// shared/data/BASELINES.md, which `foresight forecast eval` prints.
package forecast
